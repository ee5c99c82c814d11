"""Perceived quality: a reward per trace, behind one interface:
``reward_model(spec, name).score(items) -> list[float]`` with items ``{id, problem, answer, trace,
graph}``. A backend may also expose ``details`` (one dict per item, written next to its reward)
and ``info`` (written into the stream's summary).

Backends: ``builtin`` -- a *process reward* for the embedded organism. It is not a learned
reward model: it checks every equation the trace states against the problem's computation
graph (is the arithmetic true, and is its result one of the correct running values?) and
the final boxed answer against the reference, and returns

    reward = (step precision + final-answer correctness) / 2        in [0, 1]

so a trace with a slip in one step scores below a fully repaired one.

Learned reward models (``scripts.reward_models``, loaded only when a config names one):
``sequence_classifier`` (Skywork-Reward style), ``outcome_reward`` (Qwen2.5-Math-RM style) and
``process_reward`` (Qwen2.5-Math-PRM style). A run scores every stream with every reward model
under ``rewards``; each gets its own scores and summary (mean with a 95% interval, tokens scored,
traces truncated). Throughput (tokens per second) goes to the job's log, not to the summary,
which stays byte-identical between runs.
"""


import importlib
import math

from scripts import word_problems as wp
from scripts.archive import replayed
from scripts.intervals import mean_ci95
from scripts.records import read_jsonl, write_json, write_jsonl
from scripts.stage import StageError, logged
from scripts.verification import last_boxed


class ProcessReward:
    def __init__(self, spec: dict, name: str = "process"):
        self.spec, self.name = spec, name

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


# Learned backends by the module that implements them, imported only when a config names one:
# torch + transformers take seconds to load, and the built-in reward needs neither. (The reward_scores
# rule hashes scripts/reward_models.py into its params itself, since this import is dynamic.)
BACKENDS = {"builtin": ProcessReward}
LEARNED = {"sequence_classifier": "scripts.reward_models", "outcome_reward": "scripts.reward_models",
           "process_reward": "scripts.reward_models"}


def reward_model(spec: dict, name: str = "reward"):
    backend = spec.get("backend")
    if backend in BACKENDS:
        return BACKENDS[backend](spec, name)
    if backend in LEARNED:
        return importlib.import_module(LEARNED[backend]).BACKENDS[backend](spec, name)
    raise StageError(f"rewards.{name}.backend: unknown reward backend {backend!r}; "
                     f"available: {sorted([*BACKENDS, *LEARNED])}")


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        graphs = {s["id"]: s.get("graph") for s in read_jsonl(snakemake.input.solvable)}
        stream = read_jsonl(snakemake.input.stream)
        items = [{**r, "graph": graphs.get(r["id"])} for r in stream]
        name = snakemake.wildcards.reward
        rm = reward_model(snakemake.params.spec, name)
        scores = rm.score(items)
        details = getattr(rm, "details", None) or [{} for _ in scores]
        write_jsonl(snakemake.output.scores, [{**d, "id": r["id"], "reward": _finite_or_none(s)}
                                              for r, s, d in zip(stream, scores, details)])
        info = dict(getattr(rm, "info", {}))
        timing = {k: info.pop(k) for k in ("seconds", "tokens_per_s") if k in info}  # varies run to run
        summary = {"stream": snakemake.wildcards.stream, "reward_model": name,
                   "backend": snakemake.params.spec["backend"], **info, **mean_ci95(scores)}
        write_json(snakemake.output.summary, summary)
        print(summary)
        if timing:
            print(f"throughput: {timing['tokens_per_s']:.1f} tokens/s ({info['tokens']} tokens in "
                  f"{timing['seconds']:.2f} s, batch size {snakemake.params.spec['batch_size']})")


def _finite_or_none(x: float):
    return x if x is not None and math.isfinite(x) else None


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
