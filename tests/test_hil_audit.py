"""HIL: the audit log of real visits, read and checked through the API as a laptop would.

Its one job: against the real daemon on the three simulators, a visit ending not at home
and a complete enrollment write the audit entries they should, asserted action by action;
then the kit's checkpoints verify with its note key alone (from ``kitctl keys status``):
the tree root recomputed from the fetched entries, an inclusion proof of the finished
visit, a consistency proof from a checkpoint taken before the visits. The audit endpoints
refuse an officer and name a bad parameter. A pairing window asked of this kit, whose network
is off, is refused (409 network_disabled) and leaves no trace in the log.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import rfc8785
from kitformats.audit.checkpoint import Checkpoint, open_checkpoint
from kitformats.audit.merkle import leaf_hash, tree_hash, verify_consistency, verify_inclusion
from kitformats.audit.note import (
    NoteRefused,
    VerifierKey,
    generate_signer_key,
    parse_signer_key,
    parse_verifier_key,
)

from hil.pytest_plugin import RigLogs
from hil.rig import SIMULATION_KIT_ID, KitdProcess, simulation_officer
from hil.sample_orders import sample_order
from kitd.api.openapi import openapi_document
from kitd.cli.daemon_client import DaemonClient
from kitd.store.audit import SYSTEM
from tests.test_hil_visits import FINGERS, IRISES, act, start_rig, start_visit, stop_rig, take

SUPERVISOR, OFFICER, TECHNICIAN = (
    simulation_officer(r)["nip"] for r in ("supervisor", "officer", "technician")
)
ORIGIN = f"e-ktp-kit/{SIMULATION_KIT_ID}/audit"
ENROLLED = [*FINGERS, *IRISES, "signature"]
# Entries the kit writes before anything is done on it: the rig adds its officers to the
# database, the daemon records its start, the rig signs its technician in.
START = [
    (SYSTEM, "officer_added"),
    (SYSTEM, "officer_added"),
    (SYSTEM, "officer_added"),
    (SYSTEM, "daemon_started"),
    (TECHNICIAN, "sign_in"),
    (SUPERVISOR, "sign_in"),
    (SUPERVISOR, "orders_imported"),
    (OFFICER, "sign_in"),
]


@dataclass
class AuditedKit:
    kitd: KitdProcess
    sims: dict[str, Any]
    supervisor: DaemonClient
    officer: DaemonClient
    logs: RigLogs


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditedKit]:
    """One kit for the module (a start takes ~10 s): the three simulators, a kitd, two orders
    imported by the supervisor, the officer signed in."""
    logs = RigLogs()
    kitd, sims, simulated = start_rig(tmp_path_factory.mktemp("audit"), logs)
    try:
        supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
        orders = [
            sample_order("MJK-001"),
            sample_order(
                "MJK-002", category="odgj", nik="3576011208550002", birth_date="1955-08-12", sex="L"
            ),
        ]
        assert supervisor.checked("POST", "/api/v1/orders", orders).json()["imported"] == 2
        yield AuditedKit(kitd, sims, supervisor, DaemonClient(kitd.url, kitd.sign_in("officer")), logs)
    finally:
        stop_rig(kitd, simulated)


@pytest.fixture
def kit(rig: AuditedKit, rig_logs: RigLogs) -> AuditedKit:
    """The module's kit, its processes' logs shown when a test fails."""
    for name, source in rig.logs.sources:
        rig_logs.add(name, source)
    return rig


def fetch_entries(client: DaemonClient) -> list[dict[str, Any]]:
    """The whole log through the API, a page at a time."""
    entries: list[dict[str, Any]] = []
    while True:
        page = client.checked("GET", f"/api/v1/audit/entries?from={len(entries)}&count=1000").json()
        assert page["from"] == len(entries)
        entries += page["entries"]
        if len(page["entries"]) < 1000:
            return entries


def note_key(kitd: KitdProcess) -> VerifierKey:
    """The kit's note key as its owner reads it off the kit: ``kitctl keys status --json``."""
    done = kitd.kitctl("keys", "status", "--json", "--config", str(kitd.config_path))
    listed = {entry["name"]: entry for entry in json.loads(done.stdout)}
    return parse_verifier_key(listed["audit note"]["verifier_key"])


def fetch_checkpoint(client: DaemonClient, key: VerifierKey) -> Checkpoint:
    reply = client.checked("GET", "/api/v1/audit/checkpoint")
    assert reply.headers["Content-Type"].startswith("text/plain")
    checkpoint = open_checkpoint(reply.body, [key])
    assert checkpoint.origin == ORIGIN
    return checkpoint


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def test_visits_are_audited_action_by_action_and_verify_with_the_note_key_alone(kit: AuditedKit) -> None:
    kitd, officer, supervisor = kit.kitd, kit.officer, kit.supervisor
    key = note_key(kitd)
    assert key.name == ORIGIN
    before = fetch_checkpoint(supervisor, key)  # signed at the daemon's start
    head = fetch_entries(supervisor)
    assert [(e["actor"], e["action"]) for e in head] == START
    assert before.size == START.index((SYSTEM, "daemon_started")) + 1

    # Not at home: started, then ended with its outcome.
    absent = start_visit(officer, "MJK-002")
    absent = act(officer, absent, "outcome", {"code": "not_home", "note": "tidak di rumah"})
    assert absent["state"] == "ended"
    # A complete enrollment, finished and sealed.
    visit = start_visit(officer, "MJK-001")
    visit = act(officer, visit, "identity", {"present": ["Sumiati", "Rina"], "consent_by": "applicant"})
    for item in ENROLLED:
        visit = take(officer, visit, item)
    visit = act(officer, visit, "finish")
    assert visit["state"] == "finished"

    entries = fetch_entries(supervisor)
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    assert entries[: len(head)] == head  # what was there stays as it was
    done = entries[len(head) :]
    # Each start ran the pre-visit check first (a quick diagnostics run, audited as the officer's).
    prechecks = [i for i, e in enumerate(done) if e["action"] == "diagnostics_run"]
    assert [done[i + 1]["action"] for i in prechecks] == ["visit_started", "visit_started"]
    assert all(done[i]["details"]["quick"] and done[i]["actor"] == OFFICER for i in prechecks)
    done = [e for e in done if e["action"] != "diagnostics_run"]
    visit_entries = [e for e in done if e["details"].get("visit") in (absent["id"], visit["id"])]
    assert visit_entries == done  # nothing else happened meanwhile

    # The officer's own actions, in order.
    mine = [(e["action"], e["details"].get("item")) for e in done if e["actor"] == OFFICER]
    assert mine == [
        ("visit_started", None),
        ("visit_ended", None),
        ("visit_started", None),
        ("visit_identity", None),
        *[("visit_item_started", item) for item in ENROLLED],
        ("visit_item_accepted", "signature"),
        ("visit_finished", None),
    ]
    started, ended = done[0], done[1]
    assert started["details"] == {
        "visit": absent["id"],
        "order": "MJK-002",
        "state": "identity",
        "category": "odgj",
    }
    assert ended["details"] == {
        "visit": absent["id"],
        "order": "MJK-002",
        "state": "ended",
        "outcome": "not_home",
        "reschedule": None,
    }
    identity = next(e for e in done if e["action"] == "visit_identity")
    assert identity["details"] == {
        "visit": visit["id"],
        "order": "MJK-001",
        "state": "capturing",
        "present": 2,
        "consent_by": "applicant",
        "guardian_relation": None,
    }
    # The system's: each item's session end, written when its session hands over the
    # capture, lies between the item's start and the next item's (or the finish).
    position = {(e["action"], e["details"].get("item")): n for n, e in enumerate(done)}
    ends = [e for e in done if e["action"] == "visit_item_session_ended"]
    assert [e["details"]["item"] for e in ends] == ENROLLED and all(e["actor"] == SYSTEM for e in ends)
    marks = [position[("visit_item_started", item)] for item in ENROLLED] + [
        position[("visit_finished", None)]
    ]
    for n, item in enumerate(ENROLLED):
        assert marks[n] < position[("visit_item_session_ended", item)] < marks[n + 1], item
        end = done[position[("visit_item_session_ended", item)]]["details"]
        assert end["status"] == "captured" and end["passed"] is True and end["score"] is not None, end
        assert "capture" not in end and set(end) <= {
            "visit", "order", "state", "item", "status", "score", "passed", "attempts"
        }  # fmt: skip
    assert (
        position[("visit_item_session_ended", "signature")] < position[("visit_item_accepted", "signature")]
    )
    finished = done[-1]
    sealed = (kitd.data_dir / "outbox" / f"{visit['bundle']['id']}.p7m").read_bytes()
    assert finished["action"] == "visit_finished" and finished["details"] == {
        "visit": visit["id"],
        "order": "MJK-001",
        "state": "finished",
        "bundle": visit["bundle"]["id"],
        "sha256": hashlib.sha256(sealed).hexdigest(),
        "size": len(sealed),
    }
    # The orders' NIKs stay in the orders: no entry names one, even masked.
    assert "3576011208550002" not in json.dumps(entries) and "********" not in json.dumps(entries)

    # As a laptop: the checkpoint signed after the seal, opened with the note key alone,
    # commits to exactly the entries fetched.
    after = fetch_checkpoint(supervisor, key)
    assert after.size == len(entries)
    leaves = [leaf_hash(rfc8785.dumps(entry)) for entry in entries]
    assert tree_hash(leaves) == after.root_hash
    index = finished["seq"]
    included = supervisor.checked("GET", f"/api/v1/audit/proof/inclusion?index={index}&size={after.size}")
    proof = included.json()
    assert (proof["index"], proof["size"], b64(proof["leaf_hash"])) == (index, after.size, leaves[index])
    verify_inclusion(leaves[index], index, after.size, [b64(h) for h in proof["proof"]], after.root_hash)
    grew = supervisor.checked("GET", f"/api/v1/audit/proof/consistency?old={before.size}&new={after.size}")
    hashes = [b64(h) for h in grew.json()["proof"]]
    verify_consistency(before.size, after.size, before.root_hash, after.root_hash, hashes)
    # Another key under the kit's name vouches for nothing.
    impostor = parse_signer_key(generate_signer_key(ORIGIN)).verifier
    with pytest.raises(NoteRefused):
        open_checkpoint(supervisor.checked("GET", "/api/v1/audit/checkpoint").body, [impostor])


def test_the_audit_endpoints_refuse_an_officer_and_name_a_bad_parameter(kit: AuditedKit) -> None:
    size = len(fetch_entries(kit.supervisor))
    paths = [
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/entries",
        "/api/v1/audit/proof/inclusion?index=0&size=1",
        "/api/v1/audit/proof/consistency?old=1&new=2",
    ]
    for path in paths:
        refused = kit.officer.request("GET", path)
        assert refused.status == 403 and refused.json()["role"] == "officer", (path, refused.body)
        assert kit.supervisor.request("GET", path).status == 200, path
    for path, parameter in [
        ("/api/v1/audit/entries?from=x", "from"),
        ("/api/v1/audit/entries?from=-1", "from"),
        ("/api/v1/audit/entries?count=0", "count"),
        ("/api/v1/audit/entries?count=1001", "count"),
        ("/api/v1/audit/entries?count=%C2%B2", "count"),  # "²", a digit to str.isdigit
        ("/api/v1/audit/proof/inclusion?index=0", "size"),
        (f"/api/v1/audit/proof/inclusion?index={size}&size={size}", "index"),
        (f"/api/v1/audit/proof/inclusion?index=0&size={size + 1}", "size"),
        ("/api/v1/audit/proof/consistency?old=2&new=1", "old"),
        (f"/api/v1/audit/proof/consistency?old=1&new={size + 1}", "new"),
        ("/api/v1/audit/proof/consistency?old=1&new=99999999999999999999", "new"),
    ]:
        reply = kit.supervisor.request("GET", path)
        assert reply.status == 400, (path, reply.status, reply.body)
        body = reply.json()
        assert body["error"] == "bad_request" and body["field"] == parameter, (path, body)
        assert parameter in body["message"], (path, body)


def test_a_pairing_window_is_refused_while_the_network_is_off_and_nothing_is_audited(
    kit: AuditedKit,
) -> None:
    # The module's kit runs with network.enabled = false, the default.
    size = len(fetch_entries(kit.supervisor))
    documented = openapi_document()["paths"]["/api/v1/pairing"]["post"]["responses"]
    for body in (None, {"seconds": 30}):
        reply = kit.supervisor.request("POST", "/api/v1/pairing", body)
        assert reply.status == 409 and "409" in documented, (body, reply.status, reply.body)
        answer = reply.json()
        assert answer["error"] == "network_disabled", answer
        assert "network.enabled = false" in answer["message"] and "\n" not in answer["message"], answer
    done = kit.kitd.kitctl("laptops", "pair", "--config", str(kit.kitd.config_path))
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    assert done.stderr.startswith("kitctl laptops pair: ") and "network.enabled" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert kit.supervisor.checked("GET", "/api/v1/pairing").json() == {"open": False, "paired": None}
    assert len(fetch_entries(kit.supervisor)) == size  # no window opened, nothing audited
