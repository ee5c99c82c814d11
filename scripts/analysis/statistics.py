"""The statistics every analysis shares: intervals of a mean, a bootstrap over problems, an
interval from bootstrap draws, and rank correlations (scipy's). Kept free of torch: the data
and report envs use it too."""

import math
import statistics

import numpy as np


def mean_ci95(values: list[float]) -> dict:
    """Mean with a normal-approximation 95% interval of the finite values (NaN bounds for
    fewer than two); ``unscored`` counts the others, e.g. a process reward of a trace whose
    steps were all truncated away."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    n = len(finite)
    mean = statistics.fmean(finite) if n else math.nan
    half = 1.96 * statistics.stdev(finite) / math.sqrt(n) if n > 1 else math.nan
    out = {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}
    if n < len(values):
        out["unscored"] = len(values) - n
    return out


def bootstrap_ci95(per_problem: list[float], seed: int = 0, rounds: int = 1000) -> tuple[float, float]:
    """Percentile bootstrap of a mean over problems."""
    x = np.asarray(per_problem, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(rounds, len(x)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def ci(values, point=None) -> dict:
    """``{value, low, high}``: the point estimate (or the mean of the finite draws) and the 2.5 and
    97.5 percentiles of the finite draws (NaN bounds when there are none)."""
    v = np.asarray([x for x in values if math.isfinite(x)])
    if not len(v):
        return {"value": math.nan if point is None else point, "low": math.nan, "high": math.nan}
    return {
        "value": float(np.mean(v)) if point is None else float(point),
        "low": float(np.percentile(v, 2.5)),
        "high": float(np.percentile(v, 97.5)),
    }


def paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    """The pairs where both values are finite."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def spearman(x, y) -> float:
    """Spearman rank correlation over the pairs where both values are finite; NaN when
    fewer than two pairs remain or one side is constant (the correlation is undefined)."""
    from scipy.stats import spearmanr

    x, y = paired(x, y)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


def exact_reverse(x, y) -> bool | None:
    """Is the ranking by ``x`` the exact reverse of the ranking by ``y`` (ties included)?
    None where the rank correlation is undefined."""
    from scipy.stats import rankdata

    if math.isnan(spearman(x, y)):
        return None
    x, y = paired(x, y)
    return bool(np.array_equal(rankdata(x), len(x) + 1 - rankdata(y)))


def same_ranking(x, y) -> bool | None:
    """Do ``x`` and ``y`` rank the pairs identically (ties included)? None where undefined."""
    return exact_reverse(x, [-v for v in y])
