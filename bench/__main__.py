"""Run benchmarks: every module in bench/ with a `run(smoke: bool)` function.

    python -m bench               all benchmarks, full size
    python -m bench NAME ...      only these (module names)
    python -m bench --smoke       a quick pass of each (what CI runs)
    python -m bench --list        the names

Each benchmark prints its own figures and the ratio against a named reference
measured in the same run. Benchmarks never fail a build on time.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from collections.abc import Callable
from pathlib import Path


def discover() -> dict[str, Callable[[bool], None]]:
    found: dict[str, Callable[[bool], None]] = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"bench.{info.name}")
        except ImportError as exc:
            print(f"bench: {info.name} skipped ({exc})", file=sys.stderr)
            continue
        run = getattr(module, "run", None)
        if callable(run):
            found[info.name] = run
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--smoke", action="store_true", help="a quick pass, few repetitions")
    parser.add_argument("--list", action="store_true", help="list the benchmarks")
    args = parser.parse_args(argv)
    benchmarks = discover()
    if args.list:
        print("\n".join(sorted(benchmarks)))
        return 0
    unknown = [n for n in args.names if n not in benchmarks]
    if unknown:
        print(
            f"bench: unknown benchmark '{unknown[0]}' (known: {', '.join(sorted(benchmarks))})",
            file=sys.stderr,
        )
        return 2
    for name in args.names or sorted(benchmarks):
        print(f"== {name}{' (smoke)' if args.smoke else ''}")
        started = time.perf_counter()
        benchmarks[name](args.smoke)
        print(f"   ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
