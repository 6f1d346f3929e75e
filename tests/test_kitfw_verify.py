"""kitfw verify against images the real imgtool signs, and parity with `imgtool verify`.

The set: images signed with an ECDSA P-256 and an Ed25519 key (accepted), and one each of a
wrong key, a flipped byte, two truncations, no signature, a downgrade and an image off the
allow-list, each refused with its reason. `imgtool verify -k KEY` is asked about every image
with every pinned key, and kitfw's format, hash and signature findings must agree with it.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from firmware_tools.cli import main as kitfw_main
from hil.rig import venv_script
from hil.signed_images import image_sha256, make_key, public_pem, run_imgtool, sign_image

RUNNING = "1.2.0"


@dataclass(frozen=True)
class ImageSet:
    workdir: Path
    config: Path
    pinned: dict[str, Path]  # key type -> public PEM
    images: dict[str, Path]


def _flip_byte(source: Path, target: Path, offset: int) -> Path:
    data = bytearray(source.read_bytes())
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def image_set(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    workdir = tmp_path_factory.mktemp("firmware")
    with ThreadPoolExecutor(max_workers=2) as pool:
        keys = dict(
            zip(
                ("ecdsa-p256", "ed25519", "rogue"),
                pool.map(
                    lambda args: make_key(workdir, *args),
                    [("ecdsa-p256",), ("ed25519",), ("ecdsa-p256", "rogue")],
                ),
                strict=True,
            )
        )
        pinned = dict(
            zip(
                ("ecdsa-p256", "ed25519"),
                pool.map(public_pem, [keys["ecdsa-p256"], keys["ed25519"]]),
                strict=True,
            )
        )
        jobs: dict[str, Callable[[], Path]] = {
            "ecdsa": lambda: sign_image(workdir, "ecdsa-p256", "1.2.3", 4096, name="ecdsa"),
            # Padded to the slot with MCUboot's trailer, and a protected TLV (security counter).
            "ed25519": lambda: sign_image(
                workdir,
                "ed25519",
                "1.2.3+7",
                5000,
                name="ed25519",
                seed=1,
                pad=True,
                extra_args=("--security-counter", "3"),
            ),
            "wrong_key": lambda: sign_image(
                workdir, "ecdsa-p256", "1.2.3", 4096, key=keys["rogue"], name="wrong_key", seed=2
            ),
            "unsigned": lambda: sign_image(workdir, None, "1.2.3", 4096, name="unsigned", seed=3),
            "downgrade": lambda: sign_image(workdir, "ecdsa-p256", "1.0.0", 4096, name="downgrade", seed=4),
            "off_list": lambda: sign_image(workdir, "ed25519", "1.3.0", 4096, name="off_list", seed=5),
        }
        images = dict(zip(jobs, pool.map(lambda job: job(), jobs.values()), strict=True))
    good = images["ecdsa"].read_bytes()
    images["flipped_byte"] = _flip_byte(images["ecdsa"], workdir / "flipped_byte.bin", 0x200 + 1000)
    images["truncated_body"] = workdir / "truncated_body.bin"
    images["truncated_body"].write_bytes(good[: 0x200 + 2048])
    images["truncated_tlvs"] = workdir / "truncated_tlvs.bin"
    images["truncated_tlvs"].write_bytes(good[:-40])

    allow_list = workdir / "allow-list.txt"
    on_list = ("ecdsa", "ed25519", "wrong_key", "unsigned", "downgrade")
    allow_list.write_text(
        "# images the office released\n"
        + "".join(f"{image_sha256(images[name])}  # {name}\n" for name in on_list)
        + "\n"
    )
    config = workdir / "kitd.toml"
    config.write_text(
        "[firmware]\n"
        f"public_keys = [{json.dumps(str(pinned['ecdsa-p256']))}, {json.dumps(str(pinned['ed25519']))}]\n"
        f"allow_list = {json.dumps(str(allow_list))}\n"
    )
    return ImageSet(workdir, config, pinned, images)


def kitfw(*args: str | Path) -> tuple[int, str, str]:
    """kitfw's main in this process (the same code as the console script): exit, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = kitfw_main([str(arg) for arg in args])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def verify_json(image_set: ImageSet, image: Path, *extra: str | Path) -> tuple[int, dict[str, dict]]:
    code, out, err = kitfw(
        "verify", image, "--config", image_set.config, "--running", RUNNING, "--json", *extra
    )
    assert err == ""
    report = json.loads(out)
    assert report["accepted"] is (code == 0)
    return code, {finding["check"]: finding for finding in report["findings"]}


@pytest.mark.parametrize("name", ["ecdsa", "ed25519"])
def test_images_signed_by_a_pinned_key_are_accepted(image_set: ImageSet, name: str) -> None:
    code, findings = verify_json(image_set, image_set.images[name])
    assert code == 0, findings
    assert list(findings) == ["format", "hash", "signature", "version", "allow_list"]
    assert all(finding["ok"] for finding in findings.values())
    kind = {"ecdsa": "ECDSA", "ed25519": "Ed25519"}[name]
    assert findings["signature"]["reason"].startswith(f"{kind} signature by pinned key ")


@pytest.mark.parametrize(
    ("name", "check", "reason"),
    [
        ("wrong_key", "signature", "made by a key that is not pinned (key hash "),
        ("flipped_byte", "hash", "the image's SHA256 TLV does not match its contents"),
        (
            "truncated_body",
            "format",
            "truncated: the header promises 4608 bytes of header and body, the file has 2560",
        ),
        ("truncated_tlvs", "format", "truncated: the TLV area needs "),
        ("unsigned", "signature", "the image is not signed"),
        ("downgrade", "version", "1.0.0 is older than the running 1.2.0 (--allow-downgrade to allow)"),
        ("off_list", "allow_list", " is not on the allow-list"),
    ],
)
def test_each_bad_image_is_refused_with_its_reason(
    image_set: ImageSet, name: str, check: str, reason: str
) -> None:
    code, findings = verify_json(image_set, image_set.images[name])
    assert code == 1
    refused = [c for c, finding in findings.items() if not finding["ok"]]
    # A changed body is no longer what was signed nor what was allowed; the rest fail one check.
    assert refused == (["hash", "signature", "allow_list"] if name == "flipped_byte" else [check])
    assert reason in findings[check]["reason"]


def test_a_downgrade_is_accepted_when_allowed(image_set: ImageSet) -> None:
    code, findings = verify_json(image_set, image_set.images["downgrade"], "--allow-downgrade")
    assert code == 0
    assert "allowed by --allow-downgrade" in findings["version"]["reason"]


def test_command_line_keys_and_allow_list_replace_the_configuration(
    image_set: ImageSet, tmp_path: Path
) -> None:
    allow_list = tmp_path / "only-off-list.txt"
    allow_list.write_text(image_sha256(image_set.images["off_list"]).upper() + "\n")
    image = image_set.images["off_list"]
    assert kitfw("verify", image, "--key", image_set.pinned["ed25519"], "--allow-list", allow_list)[0] == 0
    code, out, _ = kitfw("verify", image, "--key", image_set.pinned["ecdsa-p256"], "--allow-list", allow_list)
    assert code == 1
    assert "REFUSED  signature: made by a key that is not pinned" in out
    assert out.splitlines()[-1].endswith("off_list.bin: refused")


# imgtool verify's messages (imgtool/main.py) and the kitfw check each answers.
IMGTOOL_ANSWERS = {
    "Image was correctly validated": None,
    "Invalid image magic": "format",
    "Invalid TLV info magic": "format",
    "Image has an invalid hash": "hash",
    "No signature found for the given key": "signature",
    "Key type does not match TLV record": "signature",
}


def imgtool_answer(key: Path, image: Path) -> tuple[bool, str | None]:
    """(accepted, the check imgtool says failed); a crash (imgtool reads past a truncated file) is
    no answer: (False, None)."""
    result = run_imgtool("verify", "-k", key, image, check=False)
    for message, check in IMGTOOL_ANSWERS.items():
        if message in result.stdout:
            assert (result.returncode == 0) is (check is None), result
            return check is None, check
    assert result.returncode != 0, result
    return False, None


def test_kitfw_agrees_with_imgtool_verify_on_format_hash_and_signature(image_set: ImageSet) -> None:
    pairs = [(key_type, name) for key_type in image_set.pinned for name in image_set.images]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(lambda pair: imgtool_answer(image_set.pinned[pair[0]], image_set.images[pair[1]]), pairs)
        )
    accepted_by_imgtool = set()
    for (key_type, name), (imgtool_ok, imgtool_check) in zip(pairs, answers, strict=True):
        _, findings = verify_json(image_set, image_set.images[name], "--key", image_set.pinned[key_type])
        refused = [c for c in ("format", "hash", "signature") if c in findings and not findings[c]["ok"]]
        assert imgtool_ok is (refused == []), (key_type, name, imgtool_check, findings)
        if imgtool_ok:
            accepted_by_imgtool.add((key_type, name))
        elif imgtool_check is not None and refused != ["format"]:
            # kitfw stops at a broken format (imgtool, reading past a cut TLV area, finds no
            # signature there); otherwise it refuses what imgtool refuses, first.
            assert refused[0] == imgtool_check, (key_type, name, imgtool_check, findings)
        else:
            assert refused == ["format"], (key_type, name, findings)
    # The set is not trivially refused: each key accepts its own good, old and off-list images.
    assert accepted_by_imgtool == {
        ("ecdsa-p256", "ecdsa"),
        ("ecdsa-p256", "downgrade"),
        ("ed25519", "ed25519"),
        ("ed25519", "off_list"),
    }


def test_the_console_script_accepts_and_refuses(image_set: ImageSet) -> None:
    script = venv_script("kitfw")

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, *map(str, args)], capture_output=True, text=True, timeout=30)

    accepted = run("verify", image_set.images["ecdsa"], "--config", image_set.config)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.splitlines()[-1].endswith("ecdsa.bin: accepted")
    refused = run("verify", image_set.images["wrong_key"], "--config", image_set.config)
    assert refused.returncode == 1
    assert "REFUSED  signature: made by a key that is not pinned (key hash " in refused.stdout


def test_user_errors_are_one_line_and_exit_2(image_set: ImageSet, tmp_path: Path) -> None:
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[firmware]\npublic_keys = 'office.pem'\n")
    bad_list = tmp_path / "bad-list.txt"
    bad_list.write_text("not a hash\n")
    image = image_set.images["ecdsa"]
    for args, message in [
        (("verify", image, "--config", bad_config), "config key 'firmware.public_keys'"),
        (("verify", image, "--key", image_set.workdir / "ed25519.pem"), "is a private key"),
        (("verify", image, "--key", tmp_path / "none.pem"), "cannot read key file "),
        (("verify", image, "--config", image_set.config, "--allow-list", bad_list), "bad-list.txt line 1: "),
        (("verify", image, "--running", "one"), "--running: version 'one'"),
        (("verify",), "the following arguments are required: IMAGE"),
        (("info", tmp_path / "none.bin"), "cannot read image "),
        (("verify", tmp_path / "none.bin", "--config", image_set.config), "cannot read image "),
    ]:
        code, out, err = kitfw(*args)
        assert code == 2, (args, out, err)
        assert out == ""
        assert len(err.splitlines()) == 1 and err.startswith("kitfw: ") and message in err, (args, err)


def test_info_shows_the_header_and_every_tlv(image_set: ImageSet) -> None:
    code, out, _ = kitfw("info", image_set.images["ed25519"], "--json")
    assert code == 0
    info = json.loads(out)
    assert info["version"] == "1.2.3+7"
    assert info["header"]["hdr_size"] == 0x200 and info["body_size"] == 5000
    assert info["trailing_size"] > 0  # padded to the slot with MCUboot's trailer
    assert [(t["name"], t["type"], t["length"]) for t in info["protected_tlvs"]] == [("SEC_CNT", 0x50, 4)]
    assert info["protected_tlvs"][0]["security_counter"] == 3
    assert [(t["name"], t["type"], t["length"]) for t in info["tlvs"]] == [
        ("SHA256", 0x10, 32),
        ("KEYHASH", 0x01, 32),
        ("ED25519", 0x24, 64),
    ]
    assert info["image_hash"] == info["computed_hash"] == image_sha256(image_set.images["ed25519"])
    # imgtool prints the same digest for the image it validated.
    verified = run_imgtool("verify", "-k", image_set.pinned["ed25519"], image_set.images["ed25519"])
    assert f"Image digest: {info['image_hash']}" in verified.stdout

    code, text, _ = kitfw("info", image_set.images["ecdsa"])
    assert code == 0
    assert "ECDSASIG     type 0x22" in text and "version        1.2.3" in text
    code, _, err = kitfw("info", image_set.images["truncated_body"])
    assert code == 1 and err.startswith("kitfw: ") and "truncated" in err
