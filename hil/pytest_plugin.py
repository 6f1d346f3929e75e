"""pytest fixtures of the rig: real kitd processes that stop at teardown and show their logs on failure."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.rig import FIXTURES, KitdProcess, SimulatorProcess
from kitd.services.claims import LOCK_DIR_ENV

LogSource = Callable[[], str]
_OWN_LOCK_DIR: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Every process the tests start claims devices in a lock directory of this pytest process
    (one per xdist worker) unless a test names its own: two workers' kits running kit-sim's
    default settings must not see each other's claims of their own simulated readers."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background (a CI runner, `make test &`), pytest inherits SIGINT ignored,
        # and so would every CLI a test starts: a test pressing Ctrl-C would wait for nothing.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if LOCK_DIR_ENV not in os.environ:
        _OWN_LOCK_DIR.append(tempfile.mkdtemp(prefix="kitd-test-locks-"))
        os.environ[LOCK_DIR_ENV] = _OWN_LOCK_DIR[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    for directory in _OWN_LOCK_DIR:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


class RigLogs:
    """Processes a test started; their logs are printed when the test fails."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, LogSource]] = []

    def add(self, name: str, source: LogSource) -> None:
        self.sources.append((name, source))


@pytest.fixture
def rig_logs(request: pytest.FixtureRequest) -> Iterator[RigLogs]:
    logs = RigLogs()
    yield logs
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for name, source in logs.sources:
            print(f"\n===== {name} log =====\n{source()}")


@pytest.fixture
def start_kitd(tmp_path: Path, rig_logs: RigLogs) -> Iterator[Callable[..., KitdProcess]]:
    """Start real kitd processes: `start_kitd(devices=[...], settings={...}, prefix=[...])`."""
    started: list[KitdProcess] = []

    def start(**kwargs: Any) -> KitdProcess:
        kitd = KitdProcess(tmp_path / f"kitd{len(started)}", **kwargs)
        started.append(kitd)
        rig_logs.add(f"kitd{len(started) - 1}", kitd.logs)
        return kitd.start()

    yield start
    for kitd in started:
        try:
            kitd.stop()
        except AssertionError as exc:
            print(exc)


@pytest.fixture
def start_simulator(tmp_path: Path, rig_logs: RigLogs) -> Iterator[Callable[..., SimulatorProcess]]:
    """Start simulator processes: `start_simulator("hil.nb1010_sim", ["--frame", path])`."""
    started: list[SimulatorProcess] = []

    def start(module: str, args: list[str] | None = None) -> SimulatorProcess:
        sim = SimulatorProcess(module, args or [], tmp_path / f"sim{len(started)}")
        started.append(sim)
        rig_logs.add(sim.name, sim.logs)
        return sim.start()

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def nb1010_fixture() -> Path:
    """The real NB-1010 recording; the test skips when ../shared/fixtures is absent."""
    path = FIXTURES / "nb1010"
    if not (path / "capture.ioctl").exists():
        pytest.skip(f"real-device fixture not found at {path}")
    return path
