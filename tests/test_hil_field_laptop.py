"""HIL: the field laptop's whole round with the real kit-sync and the real kitd, over real TLS.

Orders go in with ``kit-sync push-orders``, an officer records a visit through the API on the
simulators, ``kit-sync pull`` fetches its sealed bundle and acknowledges it, the central
office's receipts go back with ``kit-sync push-receipts`` and the bundle is delivered. A
download cut in the middle resumes and ends byte-identical, and a laptop killed at random
points of its pull and acknowledgement neither loses nor duplicates a bundle.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hil.field_laptop import (
    KitRelay,
    KitSync,
    central_receipts,
    complete_visit,
    network_kit,
    outbox_rows,
    seal_bundles,
    sealed_file,
)
from hil.kit_sim import LOOPBACK_NETWORK, simulated_kitd, start_simulators, stop_simulators
from hil.outbox_rig import sample_captures
from hil.pytest_plugin import RigLogs
from hil.rig import KitdProcess
from hil.sample_orders import sample_order
from hil.sample_visit import SampleVisit
from kitd.cli.daemon_client import DaemonClient

# A bounded loop (issue 29): each round kills the laptop somewhere in its pull.
KILL_ROUNDS = 10


@pytest.fixture(scope="module")
def sample() -> SampleVisit:
    return sample_captures()


def pulled(directory: Path) -> dict[str, bytes]:
    """The whole bundles a pull left in ``directory``, by bundle id."""
    return {p.name.removesuffix(".p7m"): p.read_bytes() for p in directory.glob("*.p7m")}


def assert_whole_and_acknowledged_only_after(kitd: KitdProcess, directory: Path) -> None:
    """Every file the laptop finished is the kit's bundle byte for byte, and every bundle the
    kit has the laptop's receipt for is among them (a receipt only after the file is safe)."""
    files = pulled(directory)
    for bundle_id, data in files.items():
        assert data == sealed_file(kitd, bundle_id), bundle_id
        statement = json.loads((directory / f"{bundle_id}.statement.json").read_text())
        assert statement["statement"]["bundle_id"] == bundle_id
    acknowledged = {b for b, row in outbox_rows(kitd).items() if row["state"] == "acknowledged"}
    assert acknowledged <= set(files), acknowledged - set(files)


def test_orders_in_a_visit_then_its_bundle_out_to_the_office(tmp_path: Path, rig_logs: RigLogs) -> None:
    simulated = start_simulators(tmp_path)
    for device in simulated:
        rig_logs.add(device.simulator.name, device.simulator.logs)
    kitd = network_kit_with(simulated, tmp_path)
    rig_logs.add("kitd", kitd.logs)
    try:
        kitd.start()
        for device_id in ("fingerprint", "iris_camera", "signature"):
            kitd.wait_for_status(device_id, "ready")
        laptop = KitSync(tmp_path / "laptop")
        record = laptop.pair(kitd, "lap-kelurahan")
        assert record["laptop_name"] == "lap-kelurahan"

        orders = tmp_path / "orders.json"
        orders.write_text(
            json.dumps(
                [
                    sample_order("MJK-101"),
                    sample_order("MJK-102", nik="3576011208550002", birth_date="1955-08-12", sex="L"),
                ]
            )
        )
        pushed = laptop.run("push-orders", orders)
        assert pushed.returncode == 0, pushed.stderr
        officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
        listed = {o["order_id"] for o in officer.checked("GET", "/api/v1/orders").json()}
        assert {"MJK-101", "MJK-102"} <= listed

        visit = complete_visit(officer, "MJK-101")
        assert visit["state"] == "finished"
        bundle_id = visit["bundle"]["id"]

        out = tmp_path / "bundles"
        first = laptop.run("pull", out)
        assert first.returncode == 0, first.stderr
        assert pulled(out) == {bundle_id: sealed_file(kitd, bundle_id)}
        row = outbox_rows(kitd)[bundle_id]
        assert row["state"] == "acknowledged" and row["acknowledged_by"] == "lap-kelurahan"
        outcomes = [json.loads(line) for line in (out / "outcomes.jsonl").read_text().splitlines()]
        assert [(o["order_id"], o["outcome"]) for o in outcomes] == [("MJK-101", "finished")]
        again = laptop.run("pull", out)  # the ledger makes it a no-op
        assert again.returncode == 0 and pulled(out) == {bundle_id: sealed_file(kitd, bundle_id)}
        assert (out / "outcomes.jsonl").read_text().count("MJK-101") == 1

        receipts = central_receipts(kitd, [row], tmp_path / "from-office")
        delivered = laptop.run("push-receipts", receipts[0].parent)
        assert delivered.returncode == 0, delivered.stderr
        assert outbox_rows(kitd)[bundle_id]["state"] == "delivered"
        status = laptop.run("status", "--json")
        assert status.returncode == 0
        (kit_status,) = json.loads(status.stdout)
        assert kit_status["ledger"]["acknowledged"] + kit_status["ledger"]["delivered"] == 1
        assert kit_status["last_sync_at"] is not None
    finally:
        kitd.stop()
        stop_simulators(simulated)


def network_kit_with(simulated: list, workdir: Path) -> KitdProcess:
    """The simulators' kitd with its network API on loopback."""
    return simulated_kitd(workdir, simulated, {"fingerprint.capture_timeout_s": 30.0, **LOOPBACK_NETWORK})


@contextmanager
def laptop_behind_relay(
    tmp_path: Path,
    rig_logs: RigLogs,
    sample: SampleVisit,
    bundles: int,
    name: str,
    relay_settings: Callable[[list[int]], dict[str, float]],
) -> Iterator[tuple[KitdProcess, KitSync, KitRelay]]:
    """A kit with ``bundles`` sealed in its outbox, a laptop paired with it, and the laptop's
    record of the kit pointed at a KitRelay in front of the kit's network port, set up by
    ``relay_settings`` from the sealed files' sizes (cut_after, bytes_per_s)."""
    kitd = network_kit(tmp_path / "kit")
    seal_bundles(kitd.workdir, sample, bundles)
    rig_logs.add("kitd", kitd.logs)
    kitd.start()
    relay = None
    try:
        laptop = KitSync(tmp_path / "laptop")
        record = laptop.pair(kitd, name)
        sizes = [row["size"] for row in outbox_rows(kitd).values()]
        relay = KitRelay(record["port"], **relay_settings(sizes))
        laptop.kit_record().write_text(json.dumps({**record, "port": relay.port}))
        yield kitd, laptop, relay
    finally:
        if relay is not None:
            relay.close()
        kitd.stop()


def test_a_download_cut_in_the_middle_resumes_byte_identical(
    tmp_path: Path, rig_logs: RigLogs, sample: SampleVisit
) -> None:
    # Cut past the bundle list, inside the first sealed file.
    def cut(sizes: list[int]) -> dict[str, float]:
        return {"cut_after": min(sizes) // 2}

    with laptop_behind_relay(tmp_path, rig_logs, sample, 2, "lap-cut", cut) as (kitd, laptop, relay):
        out = tmp_path / "bundles"
        done = laptop.run("pull", out)
        assert done.returncode == 0, done.stderr
        assert relay.cuts == 1 and relay.connections >= 2  # cut once, reconnected
        rows = outbox_rows(kitd)
        assert pulled(out) == {b: sealed_file(kitd, b) for b in rows}
        assert {row["state"] for row in rows.values()} == {"acknowledged"}
        assert not list(out.glob("*.part"))


def test_a_laptop_killed_anywhere_in_a_pull_loses_and_duplicates_nothing(
    tmp_path: Path, rig_logs: RigLogs, sample: SampleVisit
) -> None:
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    print(f"KILL_SEED={seed}")
    chance = random.Random(seed)

    # Slowed so that the whole transfer takes five seconds, spread over several killed
    # rounds (each resumes the last one's .part): the kills land in downloads,
    # between a file's rename and its receipt, and in the receipts themselves. Each kill
    # comes before a whole pull could end (1.8 s at most), so the first round is always
    # killed, whatever the seed: a loop in which nothing was killed would prove nothing.
    def paced(sizes: list[int]) -> dict[str, float]:
        return {"bytes_per_s": sum(sizes) / 5.0}

    with laptop_behind_relay(tmp_path, rig_logs, sample, 10, "lap-killed", paced) as (kitd, laptop, _):
        out = tmp_path / "bundles"
        kills, rounds = 0, []
        for _ in range(KILL_ROUNDS):
            running = laptop.start("pull", out, "--no-progress")
            try:
                running.wait(timeout=chance.uniform(0.3, 1.8))
            except subprocess.TimeoutExpired:  # still running: killed where it is
                running.send_signal(signal.SIGKILL)
                running.wait(timeout=30)
            assert running.returncode in (0, -signal.SIGKILL), running.stderr.read() if running.stderr else ""
            kills += running.returncode == -signal.SIGKILL
            assert_whole_and_acknowledged_only_after(kitd, out)
            states = [row["state"] for row in outbox_rows(kitd).values()]
            rounds.append(
                f"{'killed' if running.returncode else 'done'}: {len(pulled(out))} whole, "
                f"{len(list(out.glob('*.part')))} part, {states.count('acknowledged')} acknowledged"
            )
        print("\n".join(rounds))  # where the kills landed (pytest -s)
        assert kills >= 1
        done = laptop.run("pull", out, "--no-progress")
        assert done.returncode == 0, done.stderr
        rows = outbox_rows(kitd)
        assert {row["state"] for row in rows.values()} == {"acknowledged"}
        assert pulled(out) == {b: sealed_file(kitd, b) for b in rows}  # each once, whole
        assert not list(out.glob("*.part"))
        assert laptop.run("pull", out, "--no-progress").returncode == 0
        assert pulled(out).keys() == rows.keys()
