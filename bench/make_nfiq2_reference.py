"""Compute the NFIQ 2 reference scores of the FVC2002 DB1_B prints.

Its one job: write ``tests/data/nfiq2_fvc2002_db1b.csv``, the NFIQ 2 score of every
print in ``../shared/fixtures/fvc2002-db1b/``, which the fingerprint-quality tests
and benchmark compare our own score against. Made with (from the repository root):

    .venv/bin/pip install nbis-py==0.1.3
    .venv/bin/python bench/make_nfiq2_reference.py

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
FIXTURES = REPO.parent / "shared" / "fixtures" / "fvc2002-db1b"
OUTPUT = REPO / "tests" / "data" / "nfiq2_fvc2002_db1b.csv"
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    files = sorted(args.fixtures.glob("*.tif"))
    if not files:
        print(f"no .tif files in {args.fixtures}", file=sys.stderr)
        return 1
    extractor = nfiq2_extractor()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="") as fh:
        fh.write(f"# NFIQ 2 (nbis-py 0.1.3) of FVC2002 DB1_B; made by: {COMMAND}\n")
        writer = csv.writer(fh)
        writer.writerow(["file", "finger", "impression", "nfiq2"])
        for path in files:
            finger, impression = path.stem.split("_")
            score = extractor.extract_minutiae(path.read_bytes()).quality().score
            writer.writerow([path.name, finger, impression, score])
            print(path.name, score)
    return 0


if __name__ == "__main__":
    sys.exit(main())
