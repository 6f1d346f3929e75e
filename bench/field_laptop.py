"""Pulling sealed bundles to a field laptop over loopback TLS: MB/s, and the kit's CPU share.

A real kitd with 100 sealed bundles in its outbox (10 in a smoke run; sealed by the real
outbox code before it starts) and its network API on loopback; the real ``kit-sync``, paired
with it through a pairing window, runs ``pull``: every bundle downloaded, checked against the
kit's signed statement, fsynced, renamed, then acknowledged with a signed receipt. It prints
the pull's throughput (the goal, issue 29: at least 50 MB/s), kitd's share of a core while it
serves, and kit-sync's own (its start included: a laptop's process, start to exit). The named
reference, in the same run: the same files fetched over the same mutual TLS by a bare client
that only reads them (one kept-alive connection, no checks, no disk).
"""

from __future__ import annotations

import http.client
import resource
import ssl
import tempfile
import time
from pathlib import Path

from bench.stats import cpu_seconds
from hil.field_laptop import KitSync, network_kit, seal_bundles
from hil.outbox_rig import sample_captures

GOAL_MB_S = 50.0


def _bare_fetch(laptop_dir: Path, host: str, port: int, bundle_ids: list[str]) -> tuple[int, float]:
    """Bytes and seconds for fetching ``bundle_ids`` with the laptop's certificate, reading only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # pinned by kit-sync; here only the bytes matter
    context.load_cert_chain(laptop_dir / "laptop-tls.crt", laptop_dir / "laptop-tls.key")
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=60)
    total = 0
    started = time.perf_counter()
    for bundle_id in bundle_ids:
        connection.request("GET", f"/api/v1/bundles/{bundle_id}")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET bundle {bundle_id}: {response.status} {body[:200]!r}")
        total += len(body)
    elapsed = time.perf_counter() - started
    connection.close()
    return total, elapsed


def _children_cpu_seconds() -> float:
    """CPU time (user + system) of this process's children that have ended and been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(smoke: bool) -> None:
    count = 10 if smoke else 100
    with tempfile.TemporaryDirectory(prefix="bench-laptop-") as temp:
        workdir = Path(temp)
        started = time.perf_counter()
        kitd = network_kit(workdir / "kit", {"log.level": "warning"}, for_tests=False)
        seal_bundles(kitd.workdir, sample_captures(), count)
        print(f"   {count} sealed bundles in the outbox ({time.perf_counter() - started:.1f} s to seal)")
        kitd.start()
        try:
            # kit-sync as a laptop runs it: installed from its wheel, its modules compiled once.
            # Run from this checkout, where PYTHONDONTWRITEBYTECODE may be set (it is in CI),
            # Python would compile them at every start; a cache of their bytecode of its own,
            # filled by the first run (the pairing), stands in for the installed one.
            compiled = {"PYTHONPYCACHEPREFIX": str(workdir / "bytecode"), "PYTHONDONTWRITEBYTECODE": ""}
            laptop = KitSync(workdir / "laptop", compiled)
            record = laptop.pair(kitd, "bench-laptop")
            startup_started = time.perf_counter()
            laptop.run("status")
            startup_s = time.perf_counter() - startup_started
            laptop_dir = laptop.kit_record().parent
            # The reference first: the bare client lists nothing and acknowledges nothing.
            bundle_ids = sorted(p.name.removesuffix(".p7m") for p in (kitd.data_dir / "outbox").glob("*.p7m"))
            bare_bytes, bare_s = _bare_fetch(laptop_dir, record["host"], record["port"], bundle_ids)
            pid = kitd.process.pid if kitd.process else 0
            cpu_before = cpu_seconds(pid)
            # kitd runs on: of this process's children, only kit-sync ends (and is waited for)
            # during the pull.
            laptop_cpu_before = _children_cpu_seconds()
            pull_started = time.perf_counter()
            done = laptop.run("pull", workdir / "bundles", "--no-progress", timeout_s=600)
            pull_s = time.perf_counter() - pull_started
            kit_cpu = cpu_seconds(pid) - cpu_before
            laptop_cpu = _children_cpu_seconds() - laptop_cpu_before
            if done.returncode != 0:
                raise RuntimeError(f"kit-sync pull exited {done.returncode}: {done.stderr}")
            pulled = sum(p.stat().st_size for p in (workdir / "bundles").glob("*.p7m"))
            uncompiled_started = time.perf_counter()
            KitSync(laptop.home, {"PYTHONDONTWRITEBYTECODE": "1"}).run("status")
            uncompiled_s = time.perf_counter() - uncompiled_started
        finally:
            kitd.stop()
    mb = pulled / 1e6
    pull_rate = mb / pull_s
    bare_rate = bare_bytes / 1e6 / bare_s
    print(
        f"   kit-sync pull: {count} bundles, {mb:.1f} MB in {pull_s:.2f} s: {pull_rate:.1f} MB/s "
        f"(goal >= {GOAL_MB_S:g} MB/s: {'met' if pull_rate >= GOAL_MB_S else 'NOT met'}); "
        f"{pull_s / count * 1e3:.1f} ms a bundle, of which kit-sync's start {startup_s:.2f} s once "
        f"({uncompiled_s:.2f} s with its modules compiled at each start, as from a checkout)"
    )
    print(
        f"   bare TLS fetch of the same files (reference): {bare_rate:.1f} MB/s; "
        f"kit-sync pull / bare: {pull_rate / bare_rate:.2f}x"
    )
    print(f"   kitd while serving the pull: {kit_cpu / pull_s:.0%} of one core ({kit_cpu:.2f} s CPU)")
    print(
        f"   kit-sync pull, start to exit: {laptop_cpu / pull_s:.0%} of one core ({laptop_cpu:.2f} s CPU, "
        "user and system)"
    )
