"""Utility: Avg@k per benchmark -- the mean accuracy over k sampled solutions per problem
(paper: 16 samples at temperature 1.0, zero-shot), averaged over problems; the headline is
the mean over benchmarks. Avg@k is mean accuracy, not pass@k. Answers are checked with
math-verify (boxed-only, unfinished generations wrong, timeouts wrong and counted)."""

from collections import Counter

import numpy as np

from scripts.analysis.statistics import bootstrap_ci95
from scripts.data.verification import Verdict, verify_answers


def avg_at_k(correct: list[list[bool]]) -> float:
    """Mean over problems of the fraction of that problem's k samples that are correct."""
    return float(np.mean([np.mean(c) for c in correct])) if correct else float("nan")


def evaluate(gen, student: dict, benchmarks: dict[str, list[dict]], spec: dict, workers: int):
    """(scores, samples): per-benchmark Avg@k with intervals, and every graded sample. All
    benchmarks are sampled in one call (one vLLM engine start for the whole evaluation)."""
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
        checked = iter(verify_answers(finished, spec["timeout_s"], workers, desc=f"grading {name}"))
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
            }
            for (p, j, s), v in zip(flat, verdicts)
        ]
        print(f"{name}: Avg@{k} = {scores[name]['avg_at_k']:.4f}")
    return scores, samples
