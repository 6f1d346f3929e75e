"""A kitd whose system clock is off, without touching the machine's: libfaketime for one process.

Its one job: the environment that makes a process (and only it) see the system's wall clock
moved by some days, as a Raspberry Pi without a battery-backed clock sees a wrong time after a
power cut. Debian's libfaketime intercepts clock_gettime and friends through LD_PRELOAD; the
monotonic clock stays true (DONT_FAKE_MONOTONIC), so that timeouts and the kit's waits behave.
The machine's real clock is never set: the kit's clock corrects itself by its own offset
(``clock.set_system`` off).
"""

from __future__ import annotations

import glob
import os

LIBRARY_PATTERNS = ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1")


def faketime_library() -> str | None:
    """Where Debian's libfaketime is, or None (scripts/install-system-packages installs it)."""
    for pattern in LIBRARY_PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def shifted_clock_env(days: float) -> dict[str, str]:
    """The environment of a process whose wall clock is ``days`` off (negative: behind)."""
    library = faketime_library()
    if library is None:
        raise RuntimeError("libfaketime is not installed (apt-get install libfaketime)")
    preload = " ".join(p for p in (library, os.environ.get("LD_PRELOAD", "")) if p)
    # "+Nd"/"-Nd": a relative offset from the real time, moving with it.
    return {"LD_PRELOAD": preload, "FAKETIME": f"{days:+g}d", "DONT_FAKE_MONOTONIC": "1"}
