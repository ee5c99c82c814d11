"""Perceived quality: a reward per trace, behind one interface:
``reward_model(spec).score(items) -> list[float]`` with items ``{problem, answer, trace, graph}``.

Backends: ``builtin`` -- a *process reward* for the embedded organism. It is not a learned
reward model: it checks every equation the trace states against the problem's computation
graph (is the arithmetic true, and is its result one of the correct running values?) and
the final boxed answer against the reference, and returns

    reward = (step precision + final-answer correctness) / 2        in [0, 1]

so a trace with a slip in one step scores below a fully repaired one. Learned reward models
(sequence classifiers, Qwen2.5-Math-RM) register themselves in ``BACKENDS`` the same way.
"""


import math
import statistics

from scripts import word_problems as wp
from scripts.archive import replayed
from scripts.records import read_jsonl, write_json, write_jsonl
from scripts.stage import StageError, logged
from scripts.verification import last_boxed


class ProcessReward:
    def __init__(self, spec: dict):
        self.spec = spec

    def score(self, items: list[dict]) -> list[float]:
        out = []
        for it in items:
            if not it.get("graph"):
                raise StageError(f"builtin process reward needs a generated problem; {it['id']} has no graph")
            g = wp.Graph.from_json(it["graph"])
            correct, stated = wp.check_steps(it["trace"], g)
            precision = correct / stated if stated else 0.0
            final = 1.0 if (last_boxed(it["trace"]) or "").strip() == str(g.answer) else 0.0
            out.append((precision + final) / 2)
        return out


BACKENDS = {"builtin": ProcessReward}


def reward_model(spec: dict):
    if spec["backend"] not in BACKENDS:
        raise ValueError(f"unknown reward backend {spec['backend']!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[spec["backend"]](spec)


def mean_ci95(values: list[float]) -> dict:
    """Mean with a normal-approximation 95% interval."""
    n = len(values)
    mean = statistics.fmean(values) if n else math.nan
    half = 1.96 * statistics.stdev(values) / math.sqrt(n) if n > 1 else math.nan
    return {"mean": mean, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        graphs = {s["id"]: s.get("graph") for s in read_jsonl(snakemake.input.solvable)}
        stream = read_jsonl(snakemake.input.stream)
        items = [{**r, "graph": graphs.get(r["id"])} for r in stream]
        scores = reward_model(snakemake.params.spec).score(items)
        write_jsonl(snakemake.output.scores, [{"id": r["id"], "reward": s} for r, s in zip(stream, scores)])
        summary = {"stream": snakemake.wildcards.stream, "reward_model": snakemake.wildcards.reward,
                   **mean_ci95(scores)}
        write_json(snakemake.output.summary, summary)
        print(summary)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
