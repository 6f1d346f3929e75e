"""How well the fingerprint score ranks and gates prints like NFIQ 2, finger by finger.

Its one job: fit :data:`kitd.capture.fingerprint_quality.SCORE_MODEL` to the NFIQ 2
references of FVC2002 DB1_B (optical) and DB4_B (synthetic SFinGe), and measure it
honestly on so few prints: leave one finger out (fit on 19 fingers, score the 8 prints
of the 20th), pooled over the 20 fingers. It reports Spearman's rank correlation with
NFIQ 2 with a bootstrap 90% interval (fingers resampled, since a finger's 8 prints are
not independent) for each set and pooled, and the gate against NFIQ 2 as counts.

    python -m groundtruth.fingerprint_agreement [--fixed | --retest | --window] [--json]

``--fixed`` scores with the constants as shipped, no refitting, through
``assess_fingerprint`` alone, so an older tree (``PYTHONPATH=<old tree>``) reports its
own model in the same table as the baseline. ``--retest`` measures NFIQ 2 against
itself: its score of copies of each print cropped by a few pixels, turned by 2 degrees
or mirrored (``bench/make_nfiq2_reference.py --altered``) ranked against its score of
the print, the same way; how far NFIQ 2 agrees with itself bounds how far any score can
agree with it. ``--window`` measures the shipped model on another sensor's geometry: each
print cut to the NB-1010's window and shrunk to its 385 ppi (:func:`nb1010_window`), ranked
against NFIQ 2 of the same window at 500 ppi (``bench/make_nfiq2_reference.py --window``);
the finger fills such a window, so the print's area says little there.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
REFERENCES = REPO / "tests" / "data"
SETS: tuple[str, ...] = ("db1b", "db4b")
FVC_PPI = 500.0
# The NB-1010's window, 256 x 180 px at 385 ppi: 16.9 mm along the finger, 11.9 across.
NB1010_WINDOW_MM = (16.9, 11.9)
NB1010_FRAME = (256, 180)
NB1010_PPI = 385.0
# NFIQ 2 bands of the gate table: good (>= 50), fair (30-49), poor (< 30).
GOOD_NFIQ2 = 50.0
POOR_NFIQ2 = 30.0
BANDS: tuple[str, ...] = (">=50", "30-49", "<30")


@dataclass
class Print:
    """One print: where it is from, its NFIQ 2 and (once measured) our metrics."""

    set: str
    file: str
    finger: str  # unique across sets, e.g. "db4b-103"
    nfiq2: float
    metrics: dict[str, float] = field(default_factory=dict)


def _table_rows(table: Path) -> list[dict[str, str]]:
    """The rows of one of the committed CSV tables (its # lines say how it was made)."""
    with table.open() as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def load_prints(fixtures: Path = FIXTURES, references: Path = REFERENCES) -> list[Print]:
    """The prints of every set whose folder and NFIQ 2 reference are present."""
    prints = []
    for name in SETS:
        folder = fixtures / f"fvc2002-{name}"
        table = references / f"nfiq2_fvc2002_{name}.csv"
        if not folder.is_dir() or not table.is_file():
            continue
        for row in _table_rows(table):
            prints.append(Print(name, row["file"], f"{name}-{row['finger']}", float(row["nfiq2"])))
    return prints


def _columns_per_print(prints: Sequence[Print], suffix: str, references: Path) -> dict[str, list[float]]:
    """The number columns of the tables ``nfiq2_fvc2002_<set>_<suffix>.csv``, each in the order
    of ``prints``; empty when a set's table is missing or leaves out one of them."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for name in sorted({p.set for p in prints}):
        table = references / f"nfiq2_fvc2002_{name}_{suffix}.csv"
        if not table.is_file():
            return {}
        for row in _table_rows(table):
            found[(name, row.pop("file"))] = row
    if not prints or any((p.set, p.file) not in found for p in prints):
        return {}
    columns = list(found[(prints[0].set, prints[0].file)])
    return {c: [float(found[(p.set, p.file)][c]) for p in prints] for c in columns}


def load_altered(prints: Sequence[Print], references: Path = REFERENCES) -> dict[str, list[float]]:
    """NFIQ 2 of each print's altered copies, by alteration, in the order of ``prints``.

    Empty when a set's table is missing."""
    return _columns_per_print(prints, "altered", references)


def window_at_500ppi(image: np.ndarray) -> np.ndarray:
    """The part of a 500 ppi print the NB-1010's window would hold, upright (its long side
    along the finger), centred on the print's ink and moved inside the image."""
    height, width = (round(mm / 25.4 * FVC_PPI) for mm in NB1010_WINDOW_MM)
    ys, xs = np.nonzero(cv2.GaussianBlur(image, (0, 0), 8) < 200)
    if ys.size == 0:
        ys, xs = np.array([image.shape[0] / 2]), np.array([image.shape[1] / 2])
    y0 = int(np.clip(round(ys.mean() - height / 2), 0, max(image.shape[0] - height, 0)))
    x0 = int(np.clip(round(xs.mean() - width / 2), 0, max(image.shape[1] - width, 0)))
    return image[y0 : y0 + height, x0 : x0 + width]


def nb1010_window(image: np.ndarray) -> np.ndarray:
    """A 500 ppi print as the NB-1010 would take it: :func:`window_at_500ppi`, laid along the
    frame's long side and shrunk to 385 ppi (256 x 180)."""
    window = cv2.rotate(window_at_500ppi(image), cv2.ROTATE_90_CLOCKWISE)
    return cv2.resize(window, NB1010_FRAME, interpolation=cv2.INTER_AREA)


def load_window_nfiq2(prints: Sequence[Print], references: Path = REFERENCES) -> list[float]:
    """NFIQ 2 of each print's NB-1010 window, in the order of ``prints``; empty when missing."""
    return _columns_per_print(prints, "window", references).get("nfiq2", [])


def read_print(fixtures: Path, p: Print) -> np.ndarray:
    image = cv2.imread(str(fixtures / f"fvc2002-{p.set}" / p.file), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"cannot read {p.set}/{p.file}")
    return image


def measure(prints: Sequence[Print], fixtures: Path = FIXTURES) -> None:
    """Fill in each print's metrics (the slow part: once per print)."""
    from kitd.capture.fingerprint_quality import fingerprint_metrics

    for p in prints:
        p.metrics = fingerprint_metrics(read_print(fixtures, p), FVC_PPI)


# --- statistics ----------------------------------------------------------------------


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 0..n-1, ties sharing their mean rank (as Spearman's rho needs)."""
    a = np.asarray(values, dtype=np.float64)
    r = np.empty(len(a))
    r[np.argsort(a, kind="stable")] = np.arange(len(a))
    for value in np.unique(a):
        tied = a == value
        r[tied] = r[tied].mean()
    return r


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (0 when either side is constant)."""
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def bootstrap_interval(
    x: Sequence[float], y: Sequence[float], groups: Sequence[str], rounds: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """90% interval of Spearman's rho, resampling whole groups (fingers) with replacement."""
    xa, ya, ga = np.asarray(x, float), np.asarray(y, float), np.asarray(groups)
    members = [np.flatnonzero(ga == g) for g in np.unique(ga)]
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(rounds):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        rhos.append(spearman(xa[picked], ya[picked]))
    low, high = np.percentile(rhos, [5.0, 95.0])
    return float(low), float(high)


# --- the model -------------------------------------------------------------------------


def fit_score_model(prints: Sequence[Print]) -> dict[str, float]:
    """Least squares of NFIQ 2 on the knees times (1, each feature of the model)."""
    from kitd.capture.fingerprint_quality import SCORE_MODEL, degradation_factor, score_features

    keys = [k for k in SCORE_MODEL if k != "intercept"]
    knees = np.array([degradation_factor(p.metrics) for p in prints])
    features = [score_features(p.metrics) for p in prints]
    columns = [knees] + [knees * np.array([f[k] for f in features]) for k in keys]
    design = np.column_stack(columns)
    target = np.array([p.nfiq2 for p in prints])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return {"intercept": float(solution[0]), **{k: float(w) for k, w in zip(keys, solution[1:], strict=True)}}


def cross_validated_scores(prints: Sequence[Print]) -> list[float]:
    """Each print scored by the model fitted without its finger."""
    from kitd.capture.fingerprint_quality import score_from_metrics

    scores = [0.0] * len(prints)
    for finger in sorted({p.finger for p in prints}):
        model = fit_score_model([p for p in prints if p.finger != finger])
        for i, p in enumerate(prints):
            if p.finger == finger:
                scores[i] = score_from_metrics(p.metrics, model)
    return scores


def cross_validated_passes(prints: Sequence[Print], scores: Sequence[float]) -> list[bool]:
    """The gate's verdict (checks and min_score, defaults) on each cross-validated score."""
    from kitd.capture.fingerprint_quality import judge_fingerprint

    return [judge_fingerprint(p.metrics, s).passed for p, s in zip(prints, scores, strict=True)]


def fixed_scores(prints: Sequence[Print], fixtures: Path = FIXTURES) -> tuple[list[float], list[bool]]:
    """Scores and verdicts of the shipped model as it stands, no refitting."""
    from kitd.capture.fingerprint_quality import assess_fingerprint

    reports = [assess_fingerprint(read_print(fixtures, p), FVC_PPI) for p in prints]
    return [r.score for r in reports], [r.passed for r in reports]


# --- report ----------------------------------------------------------------------------


def band(nfiq2: float) -> str:
    return BANDS[0] if nfiq2 >= GOOD_NFIQ2 else BANDS[1] if nfiq2 >= POOR_NFIQ2 else BANDS[2]


def gate_table(prints: Sequence[Print], passed: Sequence[bool]) -> dict[str, dict[str, int]]:
    """Counts of pass and fail in each NFIQ 2 band."""
    table = {b: {"pass": 0, "fail": 0} for b in BANDS}
    for p, ok in zip(prints, passed, strict=True):
        table[band(p.nfiq2)]["pass" if ok else "fail"] += 1
    return table


def agreement(prints: Sequence[Print], scores: Sequence[float], passed: Sequence[bool]) -> dict[str, object]:
    """Spearman with its interval per set and pooled, and the gate tables."""
    out: dict[str, object] = {}
    for name in (*SETS, "pooled"):
        chosen = [i for i, p in enumerate(prints) if name in ("pooled", p.set)]
        if not chosen:
            continue
        x = [scores[i] for i in chosen]
        y = [prints[i].nfiq2 for i in chosen]
        low, high = bootstrap_interval(x, y, [prints[i].finger for i in chosen])
        out[name] = {
            "prints": len(chosen),
            "fingers": len({prints[i].finger for i in chosen}),
            "spearman": round(spearman(x, y), 3),
            "interval_90": [round(low, 3), round(high, 3)],
            "gate": gate_table([prints[i] for i in chosen], [passed[i] for i in chosen]),
        }
    return out


def _share(table: dict[str, dict[str, int]], row: str, column: str) -> str:
    n = table[row]["pass"] + table[row]["fail"]
    return f"{table[row][column]}/{n} ({100.0 * table[row][column] / n:.0f}%)" if n else "-"


def print_report(result: dict[str, object], label: str, out: Callable[[str], None] = print) -> None:
    out(f"{label}:")
    for name in (*SETS, "pooled"):
        entry = result.get(name)
        if not isinstance(entry, dict):
            continue
        low, high = entry["interval_90"]
        out(
            f"  {name:7s} {entry['prints']:3d} prints, {entry['fingers']:2d} fingers: "
            f"Spearman {entry['spearman']:.3f} (90% {low:.3f}-{high:.3f})"
        )
        table = entry["gate"]
        out(
            f"          gate: NFIQ 2 >=50 passed {_share(table, '>=50', 'pass')}; "
            f"30-49 passed {_share(table, '30-49', 'pass')}; <30 failed {_share(table, '<30', 'fail')}"
        )


def retest_agreement(prints: Sequence[Print]) -> dict[str, dict[str, object]]:
    """NFIQ 2 of each alteration ranked against NFIQ 2 of the print, per set and pooled, by
    alteration; the gate is NFIQ 2 of the copy at the kit's own min_score, so its table reads
    like ours. Empty without the altered copies' tables."""
    from kitd.capture.fingerprint_quality import DEFAULT_THRESHOLDS

    least = DEFAULT_THRESHOLDS["min_score"]
    altered = load_altered(prints)
    return {a: agreement(prints, scores, [s >= least for s in scores]) for a, scores in altered.items()}


def window_agreement(prints: Sequence[Print], fixtures: Path = FIXTURES) -> dict[str, object]:
    """The shipped model on the prints' NB-1010 windows (:func:`nb1010_window`, 385 ppi)
    against NFIQ 2 of the same windows; empty without their table."""
    from kitd.capture.fingerprint_quality import assess_fingerprint

    nfiq2 = load_window_nfiq2(prints)
    if not nfiq2:
        return {}
    windows = [Print(p.set, p.file, p.finger, n) for p, n in zip(prints, nfiq2, strict=True)]
    reports = [assess_fingerprint(nb1010_window(read_print(fixtures, p)), NB1010_PPI) for p in prints]
    return agreement(windows, [r.score for r in reports], [r.passed for r in reports])


def report_retest(prints: Sequence[Print], as_json: bool) -> int:
    results = retest_agreement(prints)
    if not results:
        print("no NFIQ 2 of altered copies: run bench/make_nfiq2_reference.py --altered", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    for alteration, result in results.items():
        print_report(result, f"NFIQ 2 of the copy ({alteration}) against NFIQ 2 of the print")
    for name in (*SETS, "pooled"):
        rhos = [r[name]["spearman"] for r in results.values() if isinstance(r.get(name), dict)]
        if rhos:
            print(f"{name}: NFIQ 2 against itself, mean over {len(rhos)} alterations {np.mean(rhos):.3f}")
    return 0


def report_window(prints: Sequence[Print], fixtures: Path, as_json: bool) -> int:
    result = window_agreement(prints, fixtures)
    if not result:
        print("no NFIQ 2 of the NB-1010 windows: run bench/make_nfiq2_reference.py --window", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    print_report(
        result, "shipped model on each print's NB-1010 window (385 ppi) against NFIQ 2 of the window"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fixed", action="store_true", help="the shipped constants, no refitting")
    mode.add_argument("--retest", action="store_true", help="NFIQ 2 against itself on altered copies")
    mode.add_argument("--window", action="store_true", help="the shipped model on the NB-1010's window")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    prints = load_prints(args.fixtures)
    if not prints:
        print(f"no FVC2002 prints with NFIQ 2 references under {args.fixtures}", file=sys.stderr)
        return 1
    if args.retest:
        return report_retest(prints, args.json)
    if args.window:
        return report_window(prints, args.fixtures, args.json)
    if args.fixed:
        scores, passed = fixed_scores(prints, args.fixtures)
        result = agreement(prints, scores, passed)
        label = "shipped model, fixed constants"
    else:
        measure(prints, args.fixtures)
        scores = cross_validated_scores(prints)
        result = agreement(prints, scores, cross_validated_passes(prints, scores))
        result["model_fitted_on_all"] = fit_score_model(prints)
        label = "leave one finger out (fit on 19 fingers, score the 20th), pooled"
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print_report(result, label)
    if "model_fitted_on_all" in result:
        model = result["model_fitted_on_all"]
        assert isinstance(model, dict)
        print("  fitted on all prints (SCORE_MODEL): " + ", ".join(f"{k} {v:.4f}" for k, v in model.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
