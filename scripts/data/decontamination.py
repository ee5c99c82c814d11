"""Decontamination: every pool problem is checked against every benchmark problem of the config
before any native trace is sampled, and a pool problem that matches one is removed.

Two tests, on normalised text (Unicode NFKC, lower case, every run of characters that are not
letters or digits one space):

- ``exact``: the normalised texts are equal (a copy with other spacing, case or punctuation);
- ``ngram``: the two problems share at least ``threshold`` of the word n-grams of the shorter
  one (``n`` words each; 8 is a common choice, and the default). A problem of fewer than ``n``
  words has no n-grams: only the exact test applies to it.

Each removed problem is attributed to the benchmark problem it matches best (an exact match
first, then the largest overlap), so the removals counted per benchmark add up to the total.
``plant`` copies a few benchmark problems into a pool (as they are, re-spaced and re-cased, and
inside a longer text) to show the check at work; the embedded default does.
"""

import re
import unicodedata
from collections import Counter, defaultdict

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def decontaminate(
    pool: list[dict], benchmarks: dict[str, list[dict]], n: int, threshold: float
) -> tuple[list[dict], dict]:
    """(the pool without contaminated problems, a report): ``removed`` lists each removed pool
    problem with the benchmark problem it matches, ``per_benchmark`` counts them."""
    exact, index, sizes = {}, defaultdict(list), {}
    for bench, problems in benchmarks.items():
        for p in problems:
            text = normalise(p["problem"])
            exact.setdefault(text, (bench, p["id"]))
            grams = ngrams(text.split(), n)
            sizes[bench, p["id"]] = len(grams)
            for g in grams:
                index[g].append((bench, p["id"]))
    kept, removed = [], []
    for p in pool:
        text = normalise(p["problem"])
        match = None
        if text in exact:
            match = (*exact[text], "exact", 1.0)
        else:
            grams = ngrams(text.split(), n)
            hits = Counter(b for g in grams for b in set(index.get(g, ())))
            best = max(
                ((hits[b] / min(len(grams), sizes[b]), b) for b in hits),
                default=(0.0, None),
                key=lambda x: (x[0], x[1]),
            )
            if best[1] is not None and best[0] >= threshold:
                match = (*best[1], "ngram", round(best[0], 4))
        if match is None:
            kept.append(p)
            continue
        bench, bench_id, kind, overlap = match
        removed.append(
            {
                "pool_id": p["id"],
                "benchmark": bench,
                "benchmark_id": bench_id,
                "match": kind,
                "overlap": overlap,
                "problem": p["problem"],
            }
        )
    per_benchmark = Counter(r["benchmark"] for r in removed)
    report = {
        "ngram": n,
        "threshold": threshold,
        "pool_before": len(pool),
        "pool_after": len(kept),
        "removed": removed,
        "per_benchmark": {b: per_benchmark.get(b, 0) for b in benchmarks},
        "benchmark_problems": {b: len(ps) for b, ps in benchmarks.items()},
    }
    return kept, report


def plant(benchmarks: dict[str, list[dict]], per_benchmark: int) -> list[dict]:
    """Copies of the first ``per_benchmark`` problems of each benchmark, to add to a pool: in
    turn as they are, re-spaced and re-cased (the exact test finds these), and inside a longer
    text (the n-gram test finds that one). A copy keeps the rest of its record."""
    variants = (
        lambda t: t,
        lambda t: "  " + t.upper().replace(" ", "   ").replace("?", " ?"),
        lambda t: "Read carefully and answer. " + t + " Show your steps.",
    )
    planted, k = [], 0
    for bench, problems in benchmarks.items():
        for j, p in enumerate(problems[:per_benchmark]):
            planted.append(
                {**p, "id": f"planted-{bench}-{j:03d}", "problem": variants[k % len(variants)](p["problem"])}
            )
            k += 1
    return planted
