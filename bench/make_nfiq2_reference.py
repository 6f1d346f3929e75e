"""Compute the NFIQ 2 reference scores of the FVC2002 DB1_B and DB4_B prints.

Its one job: write ``tests/data/nfiq2_fvc2002_<set>.csv``, the NFIQ 2 score of
every print in ``../shared/fixtures/fvc2002-<set>/`` (``db1b``: optical, ``db4b``:
synthetic SFinGe), which the fingerprint-quality tests and benchmark compare our
own score against. Made with (from the repository root):

    .venv/bin/pip install nbis-py==0.1.3
    .venv/bin/python bench/make_nfiq2_reference.py            # both sets
    .venv/bin/python bench/make_nfiq2_reference.py --set db4b  # one
    .venv/bin/python bench/make_nfiq2_reference.py --altered   # and NFIQ 2 of altered copies
    .venv/bin/python bench/make_nfiq2_reference.py --window    # and of the NB-1010's window

``--window`` also writes ``tests/data/nfiq2_fvc2002_<set>_window.csv``: NFIQ 2 of the
part of each print the kit's NB-1010 would hold, its 16.9 x 11.9 mm window centred on the
print (``groundtruth.fingerprint_agreement.window_at_500ppi``), at 500 ppi as NFIQ 2 wants;
``python -m groundtruth.fingerprint_agreement --window`` ranks our score of the same window
at the NB-1010's 385 ppi against it.

``--altered`` also writes ``tests/data/nfiq2_fvc2002_<set>_altered.csv``: NFIQ 2 of
each print cropped by a few pixels, turned by 2 degrees and mirrored. Nothing a
person would call a different print, so how far NFIQ 2 moves on them is NFIQ 2's
own noise, the yardstick any score that ranks "like NFIQ 2" is measured against
(``python -m groundtruth.fingerprint_agreement --retest``).

``nbis-py`` is a development/benchmark dependency only (x86 wheels, ~150-200 ms an
image); kitd never imports it. The TIFF files are handed to NFIQ 2 byte for byte;
NFIQ 2 assumes 500 ppi, which is what these prints are (the ``ppi`` setting of
nbis-py does not change the NFIQ 2 score, checked on 101_1).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script, by a Python that has nbis-py (and maybe not kitd)
from groundtruth.fingerprint_agreement import window_at_500ppi  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures"
DATA = REPO / "tests" / "data"
SETS = {"db1b": "DB1_B", "db4b": "DB4_B"}
COMMAND = ".venv/bin/python bench/make_nfiq2_reference.py"
TURN_DEG = 2.0
Copy = Callable[[np.ndarray], np.ndarray]


def _turned(image: np.ndarray, degrees: float) -> np.ndarray:
    """The print turned about its centre; the corners it uncovers are the background's grey."""
    h, w = image.shape
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    background = int(np.percentile(image, 99))
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=background)


# Copies of one print that are the same print to any reader: a pixel or a few off the
# edge, a slight turn, the mirror image (a finger's ridges have no handedness NFIQ 2 uses).
ALTERATIONS: dict[str, Copy] = {
    "crop_top_1": lambda im: im[1:],
    "crop_left_1": lambda im: im[:, 1:],
    "crop_corner_2": lambda im: im[2:, 2:],
    "crop_sides_4": lambda im: im[4:-4, 4:-4],
    "turn_plus_2": lambda im: _turned(im, TURN_DEG),
    "turn_minus_2": lambda im: _turned(im, -TURN_DEG),
    "mirror": lambda im: im[:, ::-1],
}


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


def write_table(
    name: str, fixtures: Path, output: Path, comment: str, columns: list[str], row: Callable[[Path], list]
) -> int:
    """One row per print of a set (``row`` of its file) under a comment and a header into
    ``output``; 1 when the set is missing."""
    files = sorted(fixtures.glob("*.tif"))
    if not files:
        print(f"no .tif files in {fixtures}", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", newline="") as fh:
        fh.write(f"# {comment}\n")
        writer = csv.writer(fh)
        writer.writerow(columns)
        for path in files:
            values = row(path)
            writer.writerow(values)
            print(name, *values)
    return 0


def write_reference(extractor, name: str, fixtures: Path, output: Path) -> int:  # type: ignore[no-untyped-def]
    """Score every print of one set into ``output``, its TIFF bytes as they are."""

    def row(path: Path) -> list:
        return [
            path.name,
            *path.stem.split("_"),
            extractor.extract_minutiae(path.read_bytes()).quality().score,
        ]

    comment = f"NFIQ 2 (nbis-py 0.1.3) of FVC2002 {SETS[name]}; made by: {COMMAND} --set {name}"
    return write_table(name, fixtures, output, comment, ["file", "finger", "impression", "nfiq2"], row)


def write_copies(  # type: ignore[no-untyped-def]
    extractor, name: str, fixtures: Path, output: Path, copies: dict[str, Copy], what: str, flag: str
) -> int:
    """NFIQ 2 of copies of every print of one set (one column each) into ``output``."""

    def row(path: Path) -> list:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        encoded = [
            cv2.imencode(".png", np.ascontiguousarray(copy(image)))[1].tobytes() for copy in copies.values()
        ]
        return [path.name, *(extractor.extract_minutiae(e).quality().score for e in encoded)]

    comment = (
        f"NFIQ 2 (nbis-py 0.1.3) of {what} of FVC2002 {SETS[name]}; made by: {COMMAND} {flag} --set {name}"
    )
    return write_table(name, fixtures, output, comment, ["file", *copies], row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), action="append", help="default: every set")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="folder holding fvc2002-<set>/")
    parser.add_argument("--output-dir", type=Path, default=DATA)
    parser.add_argument("--altered", action="store_true", help="also NFIQ 2 of altered copies of each print")
    parser.add_argument("--window", action="store_true", help="also NFIQ 2 of each print's NB-1010 window")
    args = parser.parse_args(argv)

    extractor = nfiq2_extractor()
    failed = 0
    for name in args.set or sorted(SETS):
        output = args.output_dir / f"nfiq2_fvc2002_{name}.csv"
        failed |= write_reference(extractor, name, args.fixtures / f"fvc2002-{name}", output)
        folder = args.fixtures / f"fvc2002-{name}"
        if args.altered:
            altered = args.output_dir / f"nfiq2_fvc2002_{name}_altered.csv"
            failed |= write_copies(
                extractor, name, folder, altered, ALTERATIONS, "altered copies", "--altered"
            )
        if args.window:
            window = args.output_dir / f"nfiq2_fvc2002_{name}_window.csv"
            copies = {"nfiq2": window_at_500ppi}
            failed |= write_copies(extractor, name, folder, window, copies, "the NB-1010 window", "--window")
    return failed


if __name__ == "__main__":
    sys.exit(main())
