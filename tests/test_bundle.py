"""Sealed bundles end to end: a finished visit sealed by the kit's own code, opened and checked
by the real `openssl cms` and by the real `kitctl bundle` process, then tampered with.

The visit is made of simulated captures (hil.sample_visit) judged by the kit's assessors;
the keys come from the simulation CA (hil.credentials). Every tamper case must be rejected
by `kitctl bundle verify` with exit 1 and its own reason.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from kitformats.bundle_statements import BundleRejected, bundle_statement, check_statement
from kitformats.cms import envelope, open_envelope, sign_content, verify_signed
from kitformats.signing import read_certificate, read_file_signer
from kitformats.statements import sign_statement

from hil.credentials import foreign_ca_signer, recipient_certificate, sign_request
from hil.rig import SIMULATION_KIT_ID, install_simulation_credentials, simulation_officer, venv_script
from hil.sample_visit import SampleVisit, finished_visit
from kitd.crypto.bundle import open_bundle, write_bundle
from kitd.crypto.container import pack_container, unpack_container
from kitd.crypto.kit_keys import KeySettings, KitKeys
from kitd.services.sealing import BundleSealer, SealingFailed

OFFICER = simulation_officer("officer")["nip"]


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kit's data_dir with the simulation credentials; the office's keys beside it."""
    root = tmp_path_factory.mktemp("sealing")
    install_simulation_credentials(root / "data", root / "office")
    return root


@pytest.fixture(scope="module")
def visit() -> SampleVisit:
    return finished_visit(OFFICER)


@pytest.fixture(scope="module")
def sealed(office: Path, visit: SampleVisit) -> Path:
    sealer = BundleSealer(KitKeys(KeySettings(office / "data" / "keys")), SIMULATION_KIT_ID, "3576", 385.0)
    devices = [
        {"id": "fingerprint", "kind": "fingerprint", "model": "NB-1010-U", "serial": "S1", "firmware": "1.2"}
    ]
    result = sealer.seal(visit.visit, visit.order, visit.captures, devices)
    return write_bundle(office / "data" / "outbox", result)


def kitctl(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_script("kitctl"), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def verify(office: Path, path: Path, *extra: object) -> subprocess.CompletedProcess[str]:
    return kitctl(
        "bundle",
        "verify",
        path,
        "--key",
        office / "office" / "central.key",
        "--ca",
        office / "data" / "keys" / "ca.crt",
        *extra,
    )


def openssl(*args: object, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["openssl", *map(str, args)], input=stdin, capture_output=True, timeout=60, check=False
    )


def test_the_outbox_holds_the_sealed_file_and_its_statement_only(office: Path, sealed: Path) -> None:
    outbox = sealed.parent
    bundle_id = sealed.name.removesuffix(".p7m")
    assert sorted(p.name for p in outbox.iterdir()) == [f"{bundle_id}.p7m", f"{bundle_id}.statement.json"]
    for path in outbox.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path  # nobody but the daemon reads the outbox
    statement = json.loads((outbox / f"{bundle_id}.statement.json").read_text())["statement"]
    data = sealed.read_bytes()
    assert statement["sha256"] == hashlib.sha256(data).hexdigest() and statement["size"] == len(data)
    assert statement["bundle_id"] == bundle_id and statement["kit_id"] == SIMULATION_KIT_ID


def test_openssl_decrypts_for_both_recipients_and_verifies_both_signers(
    office: Path, sealed: Path, tmp_path: Path
) -> None:
    keys = office / "data" / "keys"
    for recipient in ("central", "escrow"):
        signed = tmp_path / f"{recipient}.der"
        done = openssl(
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            sealed,
            "-recip",
            keys / "recipients" / f"{recipient}.crt",
            "-inkey",
            office / "office" / f"{recipient}.key",
            "-out",
            signed,
        )
        assert done.returncode == 0, done.stderr
    container = tmp_path / "container.tar"
    done = openssl(
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        tmp_path / "central.der",
        "-CAfile",
        keys / "ca.crt",
        "-purpose",
        "any",
        "-out",
        container,
    )
    assert done.returncode == 0 and b"Verification successful" in done.stderr, done.stderr
    assert (tmp_path / "central.der").read_bytes() == (tmp_path / "escrow.der").read_bytes()
    listed = openssl(
        "cms", "-cmsout", "-print", "-inform", "DER", "-in", tmp_path / "central.der"
    ).stdout.decode()
    assert (
        listed.count("signerInfos") == 1
        and f"officer {OFFICER}" in listed
        and f"kit {SIMULATION_KIT_ID}" in listed
    )
    # The container: a deterministic POSIX tar of the transaction and the manifest.
    with tarfile.open(container) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["manifest.json", "transaction.an2"]
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    # The statement: a detached signature over its canonical JSON, checked by openssl.
    statement_path = sealed.with_name(sealed.name.replace(".p7m", ".statement.json"))
    document = json.loads(statement_path.read_text())
    import rfc8785

    (tmp_path / "statement.json").write_bytes(rfc8785.dumps(document["statement"]))
    (tmp_path / "statement.der").write_bytes(base64.b64decode(document["signature"]))
    done = openssl(
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        tmp_path / "statement.der",
        "-content",
        tmp_path / "statement.json",
        "-CAfile",
        keys / "ca.crt",
        "-purpose",
        "any",
        "-out",
        os.devnull,
    )
    assert done.returncode == 0, done.stderr


def test_kitctl_verifies_and_opens_the_bundle(
    office: Path, sealed: Path, visit: SampleVisit, tmp_path: Path
) -> None:
    done = verify(office, sealed, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["order_id"] == "MJK-001" and summary["items"] == {
        "captured": 13,
        "forced": 0,
        "excepted": 0,
    }
    assert summary["signers"]["officer"] == f"officer {OFFICER}" and summary["statement"] == "checked"
    assert summary["records"] == 1 + 1 + 10 + 2 + 2  # Type-1, Type-2, ten Type-14, two Type-17, Type-8 and 99
    text = verify(office, sealed)
    assert text.returncode == 0 and text.stdout.startswith(f"bundle {summary['bundle_id']}: OK")
    out = tmp_path / "opened"
    opened = kitctl(
        "bundle",
        "open",
        sealed,
        "--key",
        office / "office" / "central.key",
        "--ca",
        office / "data" / "keys" / "ca.crt",
        "--out",
        out,
    )
    assert opened.returncode == 0, opened.stderr
    names = {p.name for p in out.iterdir()}
    assert {"manifest.json", "transaction.an2"} <= names
    assert any(n.endswith(".wsq") for n in names) and any(n.endswith(".jp2") for n in names)


def test_the_manifest_says_what_the_visit_recorded(office: Path, sealed: Path, visit: SampleVisit) -> None:
    key = serialization.load_pem_private_key((office / "office" / "central.key").read_bytes(), None)
    trust = [read_certificate(office / "data" / "keys" / "ca.crt")]
    opened = open_bundle(sealed.read_bytes(), key, trust)
    manifest = opened.manifest
    assert manifest["officer"] == OFFICER and manifest["kit"]["id"] == SIMULATION_KIT_ID
    assert manifest["visit"]["id"] == visit.visit["id"] and manifest["consent"]["consent_by"] == "applicant"
    assert manifest["clock"] == {"confirmed": False, "confirmed_at": None}
    by_item = {i["item"]: i for i in manifest["items"]}
    for item in visit.visit["items"]:
        entry = by_item[item["item"]]
        assert entry["score"] == item["score"] and entry["attempts"] == item["attempts"]
        metrics = visit.captures[item["item"]].report.metrics
        assert set(entry["metrics"]) == set(metrics)
        finite = {k: float(v) for k, v in metrics.items() if entry["metrics"][k] is not None}
        assert entry["metrics"] == pytest.approx({**entry["metrics"], **finite})
    assert by_item["iris:right"]["record"] == "type-17:right"
    assert manifest["devices"][0]["model"] == "NB-1010-U"


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.mark.parametrize("where", [0.0, 0.001, 0.01, 0.25, 0.5, 0.75, 0.999, 1.0])
def test_a_flipped_byte_anywhere_is_rejected(
    office: Path, sealed: Path, tmp_path: Path, where: float
) -> None:
    data = sealed.read_bytes()
    at = min(len(data) - 1, int(where * len(data)))
    bad = tmp_path / "bad.p7m"
    bad.write_bytes(flipped(data, at))
    done = verify(
        office, bad, "--statement", sealed.with_name(sealed.name.replace(".p7m", ".statement.json"))
    )
    assert done.returncode == 1, (at, done.stdout, done.stderr)
    assert "rejected" in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_flipped_bits_everywhere_are_rejected_without_a_crash(office: Path, sealed: Path) -> None:
    """A bit flipped at many places: with the statement every one is rejected; without it,
    only the other recipient's part of the envelope (which the GCM tag does not cover and
    the central office cannot check) may pass, and nothing raises but BundleRejected."""
    data = sealed.read_bytes()
    key = serialization.load_pem_private_key((office / "office" / "central.key").read_bytes(), None)
    trust = [read_certificate(office / "data" / "keys" / "ca.crt")]
    statement = json.loads(sealed.with_name(sealed.name.replace(".p7m", ".statement.json")).read_text())
    rng = random.Random(22)
    places = [*range(0, 1500, 37), *(rng.randrange(len(data)) for _ in range(40)), len(data) - 1]
    passed_without_statement = []
    for at in places:
        bad = data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
        with pytest.raises(BundleRejected):
            check_statement(statement, bad, trust)
        try:
            open_bundle(bad, key, trust)
        except BundleRejected:
            continue
        passed_without_statement.append(at)
    assert all(at < 1500 for at in passed_without_statement), passed_without_statement
    for cut in (0, 1, 100, len(data) // 2, len(data) - 1):
        with pytest.raises(BundleRejected):
            open_bundle(data[:cut], key, trust)


def _reseal(office: Path, visit_container: bytes, signers: list, tmp_path: Path) -> Path:
    keys = office / "data" / "keys"
    recipients = [read_certificate(keys / "recipients" / f"{n}.crt") for n in ("central", "escrow")]
    forged = tmp_path / "forged.p7m"
    forged.write_bytes(envelope(sign_content(visit_container, signers), recipients))
    return forged


@pytest.fixture
def container(office: Path, sealed: Path) -> bytes:
    key = serialization.load_pem_private_key((office / "office" / "central.key").read_bytes(), None)
    _, signed = open_envelope(sealed.read_bytes(), key)
    trust = [read_certificate(office / "data" / "keys" / "ca.crt")]
    from kitformats.cms import verify_signed

    return verify_signed(signed, trust).content


def test_the_officers_signer_removed_is_rejected(office: Path, container: bytes, tmp_path: Path) -> None:
    keys = office / "data" / "keys"
    kit = read_file_signer(keys / "kit.key", keys / "kit.crt")
    done = verify(office, _reseal(office, container, [kit], tmp_path), "--no-statement")
    assert done.returncode == 1 and "officer's signature is missing" in done.stderr, done.stderr


def test_a_signer_from_a_foreign_ca_is_rejected(office: Path, container: bytes, tmp_path: Path) -> None:
    keys = office / "data" / "keys"
    kit = read_file_signer(keys / "kit.key", keys / "kit.crt")
    stranger = foreign_ca_signer(tmp_path, f"officer {OFFICER}")
    done = verify(office, _reseal(office, container, [kit, stranger], tmp_path), "--no-statement")
    assert done.returncode == 1 and "trusted" in done.stderr and f"officer {OFFICER}" in done.stderr, (
        done.stderr
    )


def test_a_forged_inner_signeddata_reencrypted_to_the_real_office_is_rejected(
    office: Path, container: bytes, tmp_path: Path
) -> None:
    """Someone who can encrypt to the office (its certificate is public) but holds no kit key:
    a changed manifest, signed by look-alike kit and officer keys of their own CA."""
    files = unpack_container(container)
    manifest = json.loads(files["manifest.json"])
    manifest["items"][0]["score"] = 99.0
    files["manifest.json"] = json.dumps(manifest).encode()
    forged_container = pack_container(files)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    kit = foreign_ca_signer(tmp_path / "a", f"kit {SIMULATION_KIT_ID}")
    officer = foreign_ca_signer(tmp_path / "b", f"officer {OFFICER}")
    done = verify(office, _reseal(office, forged_container, [kit, officer], tmp_path), "--no-statement")
    assert done.returncode == 1 and "trusted" in done.stderr, done.stderr
    # The real officer's certificate carried, but the signature made with another key (the
    # kit's own code refuses to make such a thing, so it is rewritten here with asn1crypto).
    keys = office / "data" / "keys"
    real_kit = read_file_signer(keys / "kit.key", keys / "kit.crt")
    real_officer = asn1_x509.Certificate.load(
        read_certificate(keys / "officers" / f"{OFFICER}.crt").public_bytes(serialization.Encoding.DER)
    )
    info = asn1_cms.ContentInfo.load(sign_content(forged_container, [real_kit, officer]))
    signed = info["content"]
    for signer_info in signed["signer_infos"]:
        if signer_info["sid"].chosen["issuer"] != real_officer.issuer:  # the look-alike officer's
            signer_info["sid"] = {
                "issuer_and_serial_number": {
                    "issuer": real_officer.issuer,
                    "serial_number": real_officer.serial_number,
                }
            }
    carried = [c for c in signed["certificates"] if c.chosen.subject != real_officer.subject]
    signed["certificates"] = [*carried, asn1_cms.CertificateChoices(name="certificate", value=real_officer)]
    recipients = [read_certificate(keys / "recipients" / f"{n}.crt") for n in ("central", "escrow")]
    swapped = tmp_path / "swapped.p7m"
    swapped.write_bytes(
        envelope(asn1_cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump(), recipients)
    )
    done = verify(office, swapped, "--no-statement")
    assert (
        done.returncode == 1 and f"officer {OFFICER}" in done.stderr and "does not verify" in done.stderr
    ), done.stderr


def test_a_statement_that_does_not_match_its_file_is_rejected(
    office: Path, sealed: Path, tmp_path: Path
) -> None:
    keys = office / "data" / "keys"
    kit = read_file_signer(keys / "kit.key", keys / "kit.crt")
    other = bundle_statement(
        "00000000-0000-4000-8000-000000000000", b"another file", dt.datetime.now(dt.UTC), SIMULATION_KIT_ID
    )
    wrong = tmp_path / "wrong.statement.json"
    wrong.write_text(json.dumps(sign_statement(other, kit)))
    done = verify(office, sealed, "--statement", wrong)
    assert done.returncode == 1 and "statement: does not match its sealed file" in done.stderr, done.stderr
    statement_path = sealed.with_name(sealed.name.replace(".p7m", ".statement.json"))
    edited = json.loads(statement_path.read_text())
    edited["statement"]["size"] += 1
    wrong.write_text(json.dumps(edited))
    done = verify(office, sealed, "--statement", wrong)
    assert done.returncode == 1 and "statement" in done.stderr, done.stderr


def test_bad_usage_exits_2_with_one_line(office: Path, sealed: Path, tmp_path: Path) -> None:
    keys = office / "data" / "keys"
    cases = [
        (["--key", tmp_path / "none.key", "--ca", keys / "ca.crt"], "none.key: no such key"),
        (["--key", keys / "kit.key", "--ca", keys / "ca.crt"], "not an RSA key"),
        (["--key", office / "office" / "central.key", "--ca", keys / "kit.key"], "holds no PEM certificate"),
    ]
    for args, words in cases:
        done = kitctl("bundle", "verify", sealed, *args)
        assert done.returncode == 2 and words in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_sealing_needs_every_key_and_says_which(office: Path, visit: SampleVisit, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    install_simulation_credentials(tmp_path, tmp_path / "office")
    sealer = BundleSealer(KitKeys(KeySettings(keys)), SIMULATION_KIT_ID, "3576", 385.0)
    (keys / "officers" / f"{OFFICER}.key").unlink()
    with pytest.raises(SealingFailed, match=f"officer {OFFICER} has no signing credential"):
        sealer.seal(visit.visit, visit.order, visit.captures, [])
    os.chmod(keys / "kit.key", 0o644)
    with pytest.raises(SealingFailed, match="kit.key: mode 0644"):
        sealer.seal(visit.visit, visit.order, visit.captures, [])
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").iterdir())


def test_the_container_is_the_same_bytes_for_the_same_files() -> None:
    files = {"transaction.an2": b"1.001:", "manifest.json": b"{}"}
    assert pack_container(files) == pack_container(dict(reversed(list(files.items()))))
    assert unpack_container(pack_container(files)) == files
    with tarfile.open(fileobj=io.BytesIO(pack_container(files))) as tar:
        assert tar.getnames() == ["manifest.json", "transaction.an2"]


def test_a_laptop_checks_a_statement_with_the_kits_certificate_alone(
    office: Path, sealed: Path, tmp_path: Path
) -> None:
    keys = office / "data" / "keys"
    statement = sealed.with_name(sealed.name.replace(".p7m", ".statement.json"))
    done = kitctl(
        "bundle", "statement", statement, "--kit-cert", keys / "kit.crt", "--file", sealed, "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["sha256"] == hashlib.sha256(sealed.read_bytes()).hexdigest()
    other = tmp_path / "other.p7m"
    other.write_bytes(sealed.read_bytes()[:-1])
    done = kitctl("bundle", "statement", statement, "--kit-cert", keys / "kit.crt", "--file", other)
    assert done.returncode == 1 and "does not match its sealed file" in done.stderr, done.stderr
    officer_certificate = keys / "officers" / f"{OFFICER}.crt"
    done = kitctl("bundle", "statement", statement, "--kit-cert", officer_certificate)
    assert done.returncode == 1 and "is not the expected signer" in done.stderr, done.stderr
    lonely = tmp_path / "lonely.p7m"
    lonely.write_bytes(sealed.read_bytes())
    done = verify(office, lonely)  # no statement beside it, none given: say so, check nothing
    assert done.returncode == 2 and "--no-statement" in done.stderr, done.stderr


def test_garbled_inner_signeddata_and_statements_are_rejected_not_crashed(office: Path, sealed: Path) -> None:
    """What anyone holding the office's public certificate could send: the inner SignedData
    changed byte by byte and re-enveloped; and statements changed byte by byte."""
    keys = office / "data" / "keys"
    key = serialization.load_pem_private_key((office / "office" / "central.key").read_bytes(), None)
    trust = [read_certificate(keys / "ca.crt")]
    recipients = [read_certificate(keys / "recipients" / f"{n}.crt") for n in ("central", "escrow")]
    _, signed = open_envelope(sealed.read_bytes(), key)
    rng = random.Random(5)
    # The SignedData's head (certificates, signer infos) lies past the content: flip there.
    tail = len(signed) - 2500
    for _ in range(60):
        at = rng.randrange(tail, len(signed)) if rng.random() < 0.8 else rng.randrange(0, 64)
        bad = signed[:at] + bytes([signed[at] ^ (1 << rng.randrange(8))]) + signed[at + 1 :]
        with pytest.raises(BundleRejected):
            open_bundle(envelope(bad, recipients), key, trust)
    text = sealed.with_name(sealed.name.replace(".p7m", ".statement.json")).read_text()
    document = json.loads(text)
    der = base64.b64decode(document["signature"])
    for _ in range(60):
        at = rng.randrange(len(der))
        bad = der[:at] + bytes([der[at] ^ (1 << rng.randrange(8))]) + der[at + 1 :]
        garbled = {**document, "signature": base64.b64encode(bad).decode()}
        with pytest.raises(BundleRejected):
            check_statement(garbled, sealed.read_bytes(), trust)


def test_a_visit_a_guardian_consented_to_is_sealed_with_the_guardian(office: Path, tmp_path: Path) -> None:
    visit = finished_visit(OFFICER, "MJK-002", guardian={"name": "Sri", "relation": "kakak"})
    sealer = BundleSealer(KitKeys(KeySettings(office / "data" / "keys")), SIMULATION_KIT_ID, "3576", 385.0)
    path = write_bundle(tmp_path / "outbox", sealer.seal(visit.visit, visit.order, visit.captures, []))
    key = serialization.load_pem_private_key((office / "office" / "central.key").read_bytes(), None)
    opened = open_bundle(path.read_bytes(), key, [read_certificate(office / "data" / "keys" / "ca.crt")])
    assert opened.manifest["consent"]["guardian"] == {"name": "Sri", "relation": "kakak"}
    assert opened.transaction.header.visit["guardian"] == {"name": "Sri", "relation": "kakak"}
    assert opened.transaction.header.visit["present"] == ["Sumiati", "Sri"]


def test_a_kit_certificate_of_another_kit_is_refused_before_sealing(
    office: Path, visit: SampleVisit, tmp_path: Path
) -> None:
    """kit.id must be the name the kit's certificate gives, or every bundle would be rejected
    at the office after its captures had gone."""
    sealer = BundleSealer(KitKeys(KeySettings(office / "data" / "keys")), "kit-7", "3576", 385.0)
    assert "names 'kit kit-sim', not 'kit kit-7'" in (sealer.problem() or "")
    with pytest.raises(SealingFailed, match="not 'kit kit-7'"):
        sealer.seal(visit.visit, visit.order, visit.captures, [])
    assert not (tmp_path / "outbox").exists()


def test_rotation_new_credentials_seal_new_bundles_and_old_bundles_still_verify(
    office: Path, visit: SampleVisit, tmp_path: Path
) -> None:
    """A new kit certificate (for a new key) and a new central recipient take effect for the
    next bundle; the bundle sealed before is untouched and still opens with the old key."""
    data = tmp_path / "data"
    install_simulation_credentials(data, tmp_path / "office")
    keys = KitKeys(KeySettings(data / "keys"))
    sealer = BundleSealer(keys, SIMULATION_KIT_ID, "3576", 385.0)
    before = sealer.seal(visit.visit, visit.order, visit.captures, [])
    old_key = (data / "keys" / "kit.key").read_bytes()
    (data / "keys" / "kit.key").rename(tmp_path / "retired.key")
    request = keys.init(SIMULATION_KIT_ID).read_bytes()
    keys.install(sign_request(request, tmp_path / "office", data / "keys"), [], SIMULATION_KIT_ID)
    new_central = recipient_certificate(tmp_path / "office", data / "keys", "central office 2027")
    keys.install_recipients(
        read_certificate(new_central), read_certificate(data / "keys" / "recipients" / "escrow.crt")
    )
    after = sealer.seal(visit.visit, visit.order, visit.captures, [])
    trust = [read_certificate(data / "keys" / "ca.crt")]
    old_central = serialization.load_pem_private_key((tmp_path / "office" / "central.key").read_bytes(), None)
    new_central_key = serialization.load_pem_private_key(new_central.with_suffix(".key").read_bytes(), None)
    first = open_bundle(before.sealed, old_central, trust)
    second = open_bundle(after.sealed, new_central_key, trust)
    assert first.kit.public_key() != second.kit.public_key()
    assert (data / "keys" / "kit.key").read_bytes() != old_key
    with pytest.raises(BundleRejected, match="envelope"):
        open_bundle(after.sealed, old_central, trust)  # the retired office key cannot


def test_a_kit_that_does_not_require_the_officers_signature_says_so_in_the_bundle(
    office: Path, visit: SampleVisit, tmp_path: Path
) -> None:
    """seal.require_officer_signature = false: sealed by the kit alone, the kit-signed manifest
    saying officer_signed false; the office sees it, and cannot be made to believe otherwise."""
    sealer = BundleSealer(KitKeys(KeySettings(office / "data" / "keys")), SIMULATION_KIT_ID, "3576", 385.0)
    alone = write_bundle(
        tmp_path / "outbox", sealer.seal(visit.visit, visit.order, visit.captures, [], officer_signs=False)
    )
    statement = alone.with_name(alone.name.replace(".p7m", ".statement.json"))
    done = verify(office, alone, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["signers"]["officer"] is None
    assert "NOT by the officer" in verify(office, alone).stdout
    # The same manifest (officer_signed false) with an officer's signature added: refused.
    key = serialization.load_pem_private_key((office / "office" / "central.key").read_bytes(), None)
    _, signed = open_envelope(alone.read_bytes(), key)
    trust = [read_certificate(office / "data" / "keys" / "ca.crt")]
    content = verify_signed(signed, trust).content
    keys = office / "data" / "keys"
    both = [
        read_file_signer(keys / "kit.key", keys / "kit.crt"),
        read_file_signer(keys / "officers" / f"{OFFICER}.key", keys / "officers" / f"{OFFICER}.crt"),
    ]
    done = verify(office, _reseal(office, content, both, tmp_path), "--no-statement")
    assert done.returncode == 1 and "signed by the kit alone (the manifest says so)" in done.stderr, (
        done.stderr
    )
    assert statement.exists()
