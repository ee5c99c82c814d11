"""Utility: Avg@k per benchmark -- the mean accuracy over k sampled solutions per problem
(paper: 16 samples at temperature 1.0, zero-shot), averaged over problems; the headline is
the mean over benchmarks. Avg@k is mean accuracy, not pass@k. Answers are checked with
math-verify (boxed-only, unfinished generations wrong, timeouts wrong and counted).

Where a benchmark's problems carry metadata of their own (MATH-500: ``level`` and ``subject``,
kept by ``scripts.data.problems``), Avg@k is also broken down by each metadata field that splits
the benchmark into groups (``breakdown``): a field with one value for every problem, or a
different value for each (an id), splits nothing and is left out."""

from collections import Counter

import numpy as np

from scripts.analysis.statistics import bootstrap_ci95
from scripts.data.verification import UNEXTRACTED, Verdict, verify_answers


def avg_at_k(correct: list[list[bool]]) -> float:
    """Mean over problems of the fraction of that problem's k samples that are correct."""
    return float(np.mean([np.mean(c) for c in correct])) if correct else float("nan")


# Fields of the study's problem schema; every other field of a problem is its own metadata.
PROBLEM_FIELDS = frozenset({"id", "problem", "answer", "reference_solution", "graph"})


def _group_order(value: str):
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def breakdown(problems: list[dict], per_problem: list[float], seed: int) -> dict:
    """field -> group -> {avg_at_k, problems, ci95_low, ci95_high}, for every metadata field
    that splits the problems into at least two groups and fewer groups than problems (problems
    without the field are left out of its groups). Groups are in numeric order where they are
    numbers (levels 1..5), else alphabetical."""
    fields = sorted({f for p in problems for f in p} - PROBLEM_FIELDS)
    out = {}
    for field in fields:
        groups: dict[str, list[float]] = {}
        for p, acc in zip(problems, per_problem):
            if p.get(field) is not None:
                groups.setdefault(str(p[field]), []).append(acc)
        if not 2 <= len(groups) < sum(map(len, groups.values())):
            continue
        out[field] = {}
        for value in sorted(groups, key=_group_order):
            low, high = bootstrap_ci95(groups[value], seed)
            out[field][value] = {
                "avg_at_k": float(np.mean(groups[value])),
                "problems": len(groups[value]),
                "ci95_low": low,
                "ci95_high": high,
            }
    return out


def evaluate(
    gen, student: dict, benchmarks: dict[str, list[dict]], spec: dict, workers: int, extraction: dict | None = None
):
    """(scores, samples): per-benchmark Avg@k with intervals, and every graded sample. All
    benchmarks are sampled in one call (one vLLM engine start for the whole evaluation).
    ``extraction``: benchmark -> answer extraction (``scripts.data.verification.EXTRACTIONS``;
    default boxed); each benchmark's scores count the samples with no answer to extract."""
    prompts = [
        student["prompt_template"].format(problem=p["problem"]) for problems in benchmarks.values() for p in problems
    ]
    outs = iter(
        gen.sample(
            prompts,
            spec["k"],
            spec["temperature"],
            spec["max_new_tokens"],
            spec["seed"],
            desc=f"sampling {len(benchmarks)} benchmarks",
        )
    )
    scores, samples = {}, []
    for name, problems in benchmarks.items():
        flat = [(p, j, s) for p in problems for j, s in enumerate(next(outs))]
        finished = [(p["answer"], s.text) for p, _, s in flat if s.finish_reason == "stop"]
        mode = (extraction or {}).get(name, "boxed")
        checked = iter(verify_answers(finished, spec["timeout_s"], workers, desc=f"grading {name}", extraction=mode))
        verdicts = [next(checked) if s.finish_reason == "stop" else Verdict(False, "unfinished") for _, _, s in flat]
        k = spec["k"]
        correct = [[v.correct for v in verdicts[i * k : (i + 1) * k]] for i in range(len(problems))]
        per_problem = [float(np.mean(c)) for c in correct]
        low, high = bootstrap_ci95(per_problem, spec["seed"])
        reasons = Counter(v.reason for v in verdicts)
        scores[name] = {
            "avg_at_k": avg_at_k(correct),
            "ci95_low": low,
            "ci95_high": high,
            "k": k,
            "problems": len(problems),
            "timeouts": reasons["timeout"],
            "unfinished": reasons["unfinished"],
            "reasons": dict(reasons),
            "breakdown": breakdown(problems, per_problem, spec["seed"]),
            "answer_extraction": mode,
            "unextracted_share": sum(reasons[r] for r in UNEXTRACTED) / max(1, len(verdicts)),
        }
        samples += [
            {
                "benchmark": name,
                "id": p["id"],
                "sample": j,
                "text": s.text,
                "finish_reason": s.finish_reason,
                "correct": v.correct,
                "reason": v.reason,
                "source": v.source,
            }
            for (p, j, s), v in zip(flat, verdicts)
        ]
        print(f"{name}: Avg@{k} = {scores[name]['avg_at_k']:.4f}")
    return scores, samples
