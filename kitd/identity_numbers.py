"""Indonesian identity numbers checked the way Dukcapil and BKN build them.

Its one job: say what is wrong with a NIP (civil servant number), a NIK (population
identity number) or a KK number (family card), as short English messages; an empty
list means the number is well formed. Pure functions, no I/O.

* NIP, 18 digits: birth date YYYYMMDD, appointment YYYYMM, sex 1 (man) or 2 (woman),
  a 3-digit sequence.
* NIK, 16 digits: region code (province, regency, district: 6 digits), birth date
  DDMMYY with 40 added to the day for women, a 4-digit sequence that is not 0000.
* KK, 16 digits: region code (6 digits), the card's issue date DDMMYY, a 4-digit
  sequence that is not 0000.
"""

from __future__ import annotations

import datetime as dt

NIP_LENGTH = 18
NIK_LENGTH = 16
KK_LENGTH = 16
# Women's NIKs carry the birth day plus 40 (a woman born on the 7th: 47).
WOMAN_DAY_OFFSET = 40
# Province codes (the first two digits of a region code), Aceh 11 to Papua Barat Daya 96.
PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65}
    | {71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96}
)
# Family cards in today's numbering were first issued in the 1970s: an earlier "issue
# date" is a typo.
EARLIEST_KK_YEAR = 1970


def _digits_problem(value: object, length: int, what: str) -> str | None:
    if not isinstance(value, str):
        return f"{what} must be a string of {length} digits"
    if len(value) != length:
        return f"{what} must be {length} digits, got {len(value)} characters"
    if not (value.isascii() and value.isdigit()):
        return f"{what} must be {length} digits, got a non-digit"
    return None


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _yy_dates(day: int, month: int, yy: int) -> list[dt.date]:
    """The calendar dates a DDMMYY can mean (19YY or 20YY)."""
    found = (_date(century + yy, month, day) for century in (1900, 2000))
    return [d for d in found if d is not None]


def _region_problem(number: str, what: str) -> str | None:
    """Province (digits 1-2) a real one, regency (3-4) and district (5-6) not 00."""
    if int(number[:2]) not in PROVINCES or number[2:4] == "00" or number[4:6] == "00":
        return f"{what} digits 1-6 are not a region code (province, regency, district): {number[:6]}"
    return None


def nip_problems(nip: object, today: dt.date | None = None) -> list[str]:
    """What is wrong with a NIP (empty when nothing is)."""
    problem = _digits_problem(nip, NIP_LENGTH, "NIP")
    if problem:
        return [problem]
    assert isinstance(nip, str)
    today = today or dt.date.today()
    problems = []
    birth = _date(int(nip[0:4]), int(nip[4:6]), int(nip[6:8]))
    if birth is None or not 1900 <= birth.year <= today.year:
        problems.append(f"NIP digits 1-8 are not a birth date YYYYMMDD ({nip[0:8]})")
    appointment = _date(int(nip[8:12]), int(nip[12:14]), 1) if 1 <= int(nip[12:14]) <= 12 else None
    if appointment is None or appointment > today:
        problems.append(f"NIP digits 9-14 are not an appointment month YYYYMM ({nip[8:14]})")
    elif birth is not None and appointment <= birth:
        problems.append(f"NIP appointment {nip[8:14]} is not after the birth date {nip[0:8]}")
    if nip[14] not in "12":
        problems.append(f"NIP digit 15 is the sex, 1 or 2, not {nip[14]}")
    if nip[15:] == "000":
        problems.append("NIP digits 16-18 (the sequence) are 000")
    return problems


def nik_birth_date(nik: str, birth_date: dt.date) -> bool:
    """Whether NIK digits 7-12 can be ``birth_date`` (either sex)."""
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if day > WOMAN_DAY_OFFSET:
        day -= WOMAN_DAY_OFFSET
    return (day, month, yy) == (birth_date.day, birth_date.month, birth_date.year % 100)


def nik_sex(nik: str) -> str:
    """``L`` (laki-laki) or ``P`` (perempuan), from the day digits of a well-formed NIK."""
    return "P" if int(nik[6:8]) > WOMAN_DAY_OFFSET else "L"


def nik_problems(nik: object, birth_date: dt.date | None = None, sex: str | None = None) -> list[str]:
    """What is wrong with a NIK, and where it disagrees with the given birth date or sex."""
    problem = _digits_problem(nik, NIK_LENGTH, "NIK")
    if problem:
        return [problem]
    assert isinstance(nik, str)
    problems = []
    region = _region_problem(nik, "NIK")
    if region:
        problems.append(region)
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    real_day = day - WOMAN_DAY_OFFSET if day > WOMAN_DAY_OFFSET else day
    if not _yy_dates(real_day, month, yy):
        problems.append(f"NIK digits 7-12 are not a birth date DDMMYY (day +40 for women): {nik[6:12]}")
    else:
        if birth_date is not None and not nik_birth_date(nik, birth_date):
            problems.append(
                f"NIK birth date {real_day:02d}-{month:02d}-{yy:02d} (digits 7-12 {nik[6:12]}) "
                f"disagrees with birth_date {birth_date.isoformat()}"
            )
        if sex in ("L", "P") and nik_sex(nik) != sex:
            says = "a woman (day +40)" if nik_sex(nik) == "P" else "a man (day without +40)"
            problems.append(f"NIK digits 7-8 ({nik[6:8]}) say {says}, disagreeing with sex {sex}")
    if nik[12:] == "0000":
        problems.append("NIK digits 13-16 (the sequence) are 0000")
    return problems


def kk_problems(kk: object, today: dt.date | None = None) -> list[str]:
    """What is wrong with a family card (KK) number."""
    problem = _digits_problem(kk, KK_LENGTH, "KK")
    if problem:
        return [problem]
    assert isinstance(kk, str)
    today = today or dt.date.today()
    problems = []
    region = _region_problem(kk, "KK")
    if region:
        problems.append(region)
    # YY is the latest century that is not in the future: a card issued "on 16-01-26" before
    # that day is from 1926, which is too early to be real.
    day, month, yy = int(kk[6:8]), int(kk[8:10]), int(kk[10:12])
    issued = _date(2000 + yy, month, day)
    if issued is not None and issued > today:
        issued = _date(1900 + yy, month, day)
    if issued is None or not EARLIEST_KK_YEAR <= issued.year or issued > today:
        problems.append(
            f"KK digits 7-12 are not an issue date DDMMYY from {EARLIEST_KK_YEAR} up to today: {kk[6:12]}"
        )
    if kk[12:] == "0000":
        problems.append("KK digits 13-16 (the sequence) are 0000")
    return problems
