"""The statistics every analysis shares: intervals of a mean, a bootstrap over problems, an
interval from bootstrap draws, and rank correlations (scipy's). Kept free of torch: the data
and report envs use it too."""

import itertools
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


# --- tests: a claim holds only when its p-value is below the configured alpha -------------------

EXACT_UP_TO = 8  # streams: 8! = 40,320 orderings are enumerated; above that, random permutations


def _ranks(v) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(v).astype(float)


def _corr(x, y, axis=-1):
    xm, ym = x - x.mean(axis=axis, keepdims=True), y - y.mean(axis=axis, keepdims=True)
    return (xm * ym).sum(axis=axis) / np.sqrt((xm**2).sum(axis=axis) * (ym**2).sum(axis=axis))


def _permutation_p(x: np.ndarray, y: np.ndarray, alternative: str, rounds: int, seed: int) -> tuple[float, bool]:
    """p-value of corr(x, y) against every pairing of ``y`` with ``x`` (exact, up to
    ``EXACT_UP_TO`` points) or ``rounds`` random pairings ((k + 1) / (rounds + 1)); and whether it
    was exact. Vectorised: scipy's permutation_test enumerates pairings far slower."""
    n = len(x)
    exact = n <= EXACT_UP_TO
    if exact:
        orders = np.array(list(itertools.permutations(range(n))))
    else:
        rng = np.random.default_rng(seed)
        orders = rng.permuted(np.tile(np.arange(n), (rounds, 1)), axis=1)
    null = _corr(x[None, :], y[orders])
    observed = _corr(x, y)
    tol = 1e-12
    k = {
        "less": np.sum(null <= observed + tol),
        "greater": np.sum(null >= observed - tol),
        "two-sided": np.sum(np.abs(null) >= abs(observed) - tol),
    }[alternative]
    return (k / len(null) if exact else (k + 1) / (rounds + 1)), exact


def spearman_test(x, y, alternative: str = "less", rounds: int = 100_000, seed: int = 0) -> dict:
    """Spearman's rho over the finite pairs, with a permutation p-value (``alternative``: "less"
    for a claimed negative correlation, "greater", or "two-sided"): exact over every ordering up to
    ``EXACT_UP_TO`` pairs, else from ``rounds`` random ones. With few pairs the smallest possible p
    is large: 1/120 for five streams."""
    x, y = paired(x, y)
    n = len(x)
    if n < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return {"rho": spearman(x, y), "p": math.nan, "n": n, "exact": False}
    rx, ry = _ranks(x), _ranks(y)
    p, exact = _permutation_p(rx, ry, alternative, rounds, seed)
    return {"rho": float(_corr(rx, ry)), "p": float(p), "n": n, "exact": exact}


def partial_spearman_test(x, y, z, alternative: str = "less", rounds: int = 100_000, seed: int = 0) -> dict:
    """Spearman's rho of ``x`` and ``y`` controlling for ``z``: the correlation of the ranks'
    residuals after a linear fit on ``z``'s ranks, with a permutation p-value over the residuals'
    pairings (exact up to ``EXACT_UP_TO`` points)."""
    x, y, z = (np.asarray(v, dtype=float) for v in (x, y, z))
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    x, y, z = x[keep], y[keep], z[keep]
    n = len(x)
    if n < 4:
        return {"rho": math.nan, "p": math.nan, "n": n, "exact": False}
    rz = np.column_stack([np.ones(n), _ranks(z)])

    def residual(v):
        r = _ranks(v)
        return r - rz @ np.linalg.lstsq(rz, r, rcond=None)[0]

    ex, ey = residual(x), residual(y)
    if np.allclose(ex, 0) or np.allclose(ey, 0):
        return {"rho": math.nan, "p": math.nan, "n": n, "exact": False}
    p, exact = _permutation_p(ex, ey, alternative, rounds, seed)
    return {"rho": float(_corr(ex, ey)), "p": float(p), "n": n, "exact": exact}


def bootstrap_p(draws, threshold: float = 0.0) -> float:
    """One-sided bootstrap p-value of "the quantity is above ``threshold``": the share of the
    finite draws at or below it, (k + 1) / (n + 1)."""
    v = np.asarray([d for d in draws if math.isfinite(d)])
    return float((np.sum(v <= threshold) + 1) / (len(v) + 1)) if len(v) else math.nan


def verdict(p: float, alpha: float) -> str:
    """ "holds" only when the statistic says so at ``alpha``; otherwise "not shown"."""
    return "undetermined" if not math.isfinite(p) else "holds" if p < alpha else "not shown"
