"""Utility: Avg@k per benchmark -- the mean accuracy over k sampled solutions per problem
(paper: 16 samples at temperature 1.0, zero-shot), averaged over problems; the headline is
the mean over benchmarks. Avg@k is mean accuracy, not pass@k. Answers are checked with
math-verify (boxed-only, unfinished generations wrong, timeouts wrong and counted)."""


from collections import Counter

import numpy as np

from scripts.generation import backend
from scripts.records import read_json, read_jsonl, write_json, write_jsonl
from scripts.stage import logged
from scripts.verification import Verdict, verify_answers


def avg_at_k(correct: list[list[bool]]) -> float:
    """Mean over problems of the fraction of that problem's k samples that are correct."""
    return float(np.mean([np.mean(c) for c in correct])) if correct else float("nan")


def bootstrap_ci95(per_problem: list[float], seed: int = 0, rounds: int = 1000) -> tuple[float, float]:
    """Percentile bootstrap over problems."""
    x = np.asarray(per_problem, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(rounds, len(x)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate(gen, student: dict, benchmarks: dict[str, list[dict]], spec: dict, workers: int):
    """(scores, samples): per-benchmark Avg@k with intervals, and every graded sample. All
    benchmarks are sampled in one call (one vLLM engine start for the whole evaluation)."""
    prompts = [student["prompt_template"].format(problem=p["problem"])
               for problems in benchmarks.values() for p in problems]
    outs = iter(gen.sample(prompts, spec["k"], spec["temperature"], spec["max_new_tokens"], spec["seed"],
                           desc=f"sampling {len(benchmarks)} benchmarks"))
    scores, samples = {}, []
    for name, problems in benchmarks.items():
        flat = [(p, j, s) for p in problems for j, s in enumerate(next(outs))]
        finished = [(p["answer"], s.text) for p, _, s in flat if s.finish_reason == "stop"]
        checked = iter(verify_answers(finished, spec["timeout_s"], workers, desc=f"grading {name}"))
        verdicts = [next(checked) if s.finish_reason == "stop" else Verdict(False, "unfinished")
                    for _, _, s in flat]
        k = spec["k"]
        correct = [[v.correct for v in verdicts[i * k:(i + 1) * k]] for i in range(len(problems))]
        per_problem = [float(np.mean(c)) for c in correct]
        low, high = bootstrap_ci95(per_problem, spec["seed"])
        reasons = Counter(v.reason for v in verdicts)
        scores[name] = {"avg_at_k": avg_at_k(correct), "ci95_low": low, "ci95_high": high,
                        "k": k, "problems": len(problems), "timeouts": reasons["timeout"],
                        "unfinished": reasons["unfinished"], "reasons": dict(reasons)}
        samples += [{"benchmark": name, "id": p["id"], "sample": j, "text": s.text,
                     "finish_reason": s.finish_reason, "correct": v.correct, "reason": v.reason}
                    for (p, j, s), v in zip(flat, verdicts)]
        print(f"{name}: Avg@{k} = {scores[name]['avg_at_k']:.4f}")
    return scores, samples


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params
        student = read_json(snakemake.input.student)
        if p.checkpoint and p.method == "full":
            gen = backend(p.spec["backend"], {**student, "path": snakemake.input.checkpoint, "revision": None},
                          batch_size=p.spec["batch_size"], vllm=p.vllm)
        else:
            adapter = snakemake.input.checkpoint if p.checkpoint else None
            gen = backend(p.spec["backend"], student, adapter=adapter, batch_size=p.spec["batch_size"], vllm=p.vllm)
        benchmarks = {name: read_jsonl(path) for name, path in zip(p.benchmarks, snakemake.input.benchmarks)}
        scores, samples = evaluate(gen, student, benchmarks, p.spec, snakemake.threads)
        write_jsonl(snakemake.output.samples, samples)
        write_json(snakemake.output.scores, {
            "benchmarks": scores, "k": p.spec["k"], "temperature": p.spec["temperature"],
            "avg_at_k": float(np.mean([s["avg_at_k"] for s in scores.values()]))})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
