"""Compute the NFIQ 2 reference scores of the FVC2002 DB1_B and DB4_B prints.

Its one job: write ``tests/data/nfiq2_fvc2002_<set>.csv``, the NFIQ 2 score of
every print in ``../shared/fixtures/fvc2002-<set>/`` (``db1b``: optical, ``db4b``:
synthetic SFinGe), which the fingerprint-quality tests and benchmark compare our
own score against. Made with (from the repository root):

    .venv/bin/pip install nbis-py==0.1.3
    .venv/bin/python bench/make_nfiq2_reference.py            # both sets
    .venv/bin/python bench/make_nfiq2_reference.py --set db4b  # one

``nbis-py`` is a development/benchmark dependency only (x86 wheels, ~150-200 ms an
image); kitd never imports it. The TIFF files are handed to NFIQ 2 byte for byte;
NFIQ 2 assumes 500 ppi, which is what these prints are (the ``ppi`` setting of
nbis-py does not change the NFIQ 2 score, checked on 101_1).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
DATA = REPO / "tests" / "data"
SETS = {"db1b": "DB1_B", "db4b": "DB4_B"}
COMMAND = ".venv/bin/python bench/make_nfiq2_reference.py"


def nfiq2_extractor():  # type: ignore[no-untyped-def]
    """An nbis-py extractor that computes NFIQ 2 (imported here: dev-only package)."""
    import nbis

    settings = nbis.NbisExtractorSettings(
        min_quality=0.0,
        get_center=False,
        check_fingerprint=False,
        compute_nfiq2=True,
        ppi=None,
    )
    return nbis.new_nbis_extractor(settings)


def write_reference(extractor, name: str, fixtures: Path, output: Path) -> int:  # type: ignore[no-untyped-def]
    """Score every print of one set into ``output``; 1 when the set is missing."""
    files = sorted(fixtures.glob("*.tif"))
    if not files:
        print(f"no .tif files in {fixtures}", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="") as fh:
        fh.write(f"# NFIQ 2 (nbis-py 0.1.3) of FVC2002 {SETS[name]}; made by: {COMMAND} --set {name}\n")
        writer = csv.writer(fh)
        writer.writerow(["file", "finger", "impression", "nfiq2"])
        for path in files:
            finger, impression = path.stem.split("_")
            score = extractor.extract_minutiae(path.read_bytes()).quality().score
            writer.writerow([path.name, finger, impression, score])
            print(name, path.name, score)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), action="append", help="default: every set")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="folder holding fvc2002-<set>/")
    parser.add_argument("--output-dir", type=Path, default=DATA)
    args = parser.parse_args(argv)

    extractor = nfiq2_extractor()
    failed = 0
    for name in args.set or sorted(SETS):
        output = args.output_dir / f"nfiq2_fvc2002_{name}.csv"
        failed |= write_reference(extractor, name, args.fixtures / f"fvc2002-{name}", output)
    return failed


if __name__ == "__main__":
    sys.exit(main())
