"""Fingerprint quality: our assessor against NFIQ 2 on the same prints, single thread.

Prints the time per image (median of many calls) of ``assess_fingerprint`` for
256 x 180 frames at 385 ppi (the NB-1010's) and 500 x 500 frames at 500 ppi, the
time of NFIQ 2 (PyPI ``nbis-py``, dev-only) on the same images, the speed ratio,
and the Spearman rank correlation of the two scores on the held-out FVC2002 DB1_B
fingers 106-110 (and, for reference, on the calibration fingers 101-105).

Images: the real NB-1010 frame and synthetic fingers for 256 x 180; FVC2002 DB1_B
prints centred on a 500 x 500 white frame and synthetic fingers for 500 x 500.
Without ../shared/fixtures only the synthetic ones are used. The nbis-py call
decodes a PNG and extracts minutiae as well as computing NFIQ 2: that is how
NFIQ 2 is used, so it is what we compare with.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from bench.stats import summary_ms, time_calls
from groundtruth.fingerprint_agreement import SETS, fixed_scores, load_prints, spearman
from hil.synthetic_finger import render_finger
from kitd.capture.fingerprint_quality import assess_fingerprint

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
FVC = FIXTURES / "fvc2002-db1b"
NB1010_FRAME = FIXTURES / "nb1010" / "capture.png"


def _nfiq2() -> Callable[[np.ndarray], float] | None:
    """NFIQ 2 of a grey image via nbis-py, or None when it is not installed."""
    try:
        import nbis
    except ImportError:
        return None
    extractor = nbis.new_nbis_extractor(
        nbis.NbisExtractorSettings(
            min_quality=0.0,
            get_center=False,
            check_fingerprint=False,
            compute_nfiq2=True,
            ppi=None,
        )
    )

    def score(image: np.ndarray) -> float:
        ok, png = cv2.imencode(".png", image)
        assert ok
        return float(extractor.extract_minutiae(png.tobytes()).quality().score)

    return score


def _pad_to(image: np.ndarray, size: int, fill: int = 255) -> np.ndarray:
    h, w = image.shape
    top, left = (size - h) // 2, (size - w) // 2
    return cv2.copyMakeBorder(
        image, top, size - h - top, left, size - w - left, cv2.BORDER_CONSTANT, value=fill
    )


def _images(smoke: bool) -> dict[str, list[tuple[str, np.ndarray, float]]]:
    seeds = range(2 if smoke else 6)
    small = [(f"synthetic {s}", render_finger(s, "good"), 385.0) for s in seeds]
    large = [
        (f"synthetic {s}", render_finger(s, "good", width=500, height=500, ppi=500.0), 500.0) for s in seeds
    ]
    if NB1010_FRAME.is_file():
        frame = cv2.imread(str(NB1010_FRAME), cv2.IMREAD_GRAYSCALE)
        small.insert(0, ("nb1010 capture.png", frame, 385.0))
    if FVC.is_dir():
        names = sorted(FVC.glob("*.tif"))[:: 20 if smoke else 5]
        for path in names:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            large.insert(0, (f"fvc {path.name}", _pad_to(image, 500), 500.0))
    return {"256x180 @385 ppi": small, "500x500 @500 ppi": large}


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm caches and lazy imports out of the figure
    return time_calls(fn, repeat)


def _correlation(smoke: bool) -> None:
    prints = load_prints(FIXTURES)
    if not prints:
        print(f"  Spearman: skipped, no FVC2002 prints with NFIQ 2 references under {FIXTURES}")
        return
    if smoke:
        prints = prints[::4]
    scores, _ = fixed_scores(prints, FIXTURES)
    subset = " (smoke: every 4th print, not the figure)" if smoke else ""
    for name in (*SETS, "pooled"):
        chosen = [i for i, p in enumerate(prints) if name in ("pooled", p.set)]
        rho = spearman([scores[i] for i in chosen], [prints[i].nfiq2 for i in chosen])
        print(f"  Spearman (our score vs NFIQ 2), {name}, n={len(chosen)}{subset}: {rho:.3f}")


def run(smoke: bool) -> None:
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the budget is for one core of the kit
    try:
        nfiq2 = _nfiq2()
        if nfiq2 is None:
            print("  NFIQ 2: skipped, nbis-py is not installed (.venv/bin/pip install nbis-py==0.1.3)")
        repeat_ours = 5 if smoke else 50
        repeat_nfiq2 = 1 if smoke else 5
        for size, images in _images(smoke).items():
            ours: list[float] = []
            theirs: list[float] = []
            for _, image, ppi in images:
                ours += _time(lambda image=image, ppi=ppi: assess_fingerprint(image, ppi), repeat_ours)
                if nfiq2 is not None:
                    theirs += _time(lambda image=image: nfiq2(image), repeat_nfiq2)
            print(f"  {size}, {len(images)} images:")
            print(f"    assess_fingerprint: {summary_ms(ours)}")
            if theirs:
                print(f"    NFIQ 2 (nbis-py):   {summary_ms(theirs)}")
                ratio = statistics.median(theirs) / statistics.median(ours)
                print(f"    speed ratio: ours is {ratio:.0f}x faster")
        _correlation(smoke)
    finally:
        cv2.setNumThreads(threads)


if __name__ == "__main__":
    import sys

    run("--smoke" in sys.argv)
