"""Confidence intervals shared by the stages that summarise per-trace measures (rewards,
retention, drift). Kept free of heavy imports: the data env (no torch) uses it too."""


import math
import statistics


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
