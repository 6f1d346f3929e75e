"""NIP, NIK and KK checks (kitd/identity_numbers.py) on valid and broken numbers."""

from __future__ import annotations

import datetime as dt

import pytest

from kitd.identity_numbers import kk_problems, nik_problems, nik_sex, nip_problems

TODAY = dt.date(2026, 11, 29)
# Kota Mojokerto (35.76), kecamatan 01; a woman born 7 March 1948 (day 07 + 40 = 47).
WOMAN_NIK = "3576014703480001"
MAN_NIK = "3576011208550002"  # a man born 12 August 1955


def test_valid_niks_and_their_sex() -> None:
    assert nik_problems(WOMAN_NIK, dt.date(1948, 3, 7), "P") == []
    assert nik_problems(MAN_NIK, dt.date(1955, 8, 12), "L") == []
    assert nik_sex(WOMAN_NIK) == "P" and nik_sex(MAN_NIK) == "L"
    assert nik_problems(WOMAN_NIK) == []  # without birth date and sex: only its own form
    # 29 February exists in 2000 (and 1900 is not a leap year, 2000 is).
    assert nik_problems("3576016902000001", dt.date(2000, 2, 29), "P") == []


@pytest.mark.parametrize(
    ("nik", "birth", "sex", "says"),
    [
        ("3576010703480001", dt.date(1948, 3, 7), "P", "disagreeing with sex P"),  # no +40
        (WOMAN_NIK, dt.date(1948, 3, 7), "L", "disagreeing with sex L"),
        (WOMAN_NIK, dt.date(1948, 3, 8), "P", "disagrees with birth_date 1948-03-08"),
        (WOMAN_NIK, dt.date(1948, 4, 7), "P", "disagrees with birth_date"),
        ("3576013102480001", None, None, "not a birth date"),  # 31 February
        ("3576017202490001", None, None, "not a birth date"),  # 32 February, a woman
        ("3576010013480001", None, None, "not a birth date"),  # month 13, day 0
        ("3576014703480000", None, None, "0000"),
        ("357601470348000", None, None, "16 digits"),
        ("35760147034800011", None, None, "16 digits"),
        ("35760147O3480001", None, None, "non-digit"),
        ("0000004703480001", None, None, "region code"),
        ("9900004703480001", None, None, "region code"),  # no province 99
        ("3500014703480001", None, None, "region code"),  # regency 00
        ("3576004703480001", None, None, "region code"),  # district 00
        (3576014703480001, None, None, "string"),
    ],
)
def test_broken_niks_say_what(nik: object, birth: dt.date | None, sex: str | None, says: str) -> None:
    problems = nik_problems(nik, birth, sex)
    assert problems and any(says in p for p in problems), problems


def test_kk_numbers() -> None:
    assert kk_problems("3576012005150003", TODAY) == []
    assert any("issue date" in p for p in kk_problems("3576013002150003", TODAY))  # 30 February
    assert any("issue date" in p for p in kk_problems("3576010113270003", TODAY))  # month 13
    assert any("0000" in p for p in kk_problems("3576012005150000", TODAY))
    assert any("16 digits" in p for p in kk_problems("35760120051500", TODAY))
    assert any("non-digit" in p for p in kk_problems("3576012005I50003", TODAY))
    # A card is not issued after today: 31-12-26 is ahead of TODAY, and 1926 is before
    # family cards were numbered this way; 1985 and this year's are fine.
    assert any("issue date" in p for p in kk_problems("3576013112260003", TODAY))
    assert kk_problems("3576013112260003", dt.date(2027, 1, 1)) == []
    assert kk_problems("3576011503850003", TODAY) == []
    assert kk_problems("3576012811260003", TODAY) == []


def test_nip() -> None:
    assert nip_problems("197503152000031001", TODAY) == []
    assert any("birth date" in p for p in nip_problems("197513152000031001", TODAY))
    assert any("appointment" in p for p in nip_problems("197503152000131001", TODAY))  # month 13
    assert any("appointment" in p for p in nip_problems("197503152030031001", TODAY))  # future
    assert any("not after the birth" in p for p in nip_problems("197503151970031001", TODAY))
    assert any("sex" in p for p in nip_problems("197503152000033001", TODAY))
    assert any("000" in p for p in nip_problems("197503152000031000", TODAY))
    assert any("18 digits" in p for p in nip_problems("19750315200003100", TODAY))
