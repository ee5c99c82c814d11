"""Rule ``reward_scores``: perceived quality -- one reward model's score of every trace of a
stream (``scripts.backends.rewards``), with its mean and 95% interval. Throughput goes to the
job's log, not to the summary, which stays byte-identical between runs."""

import math

from scripts.analysis.statistics import mean_ci95
from scripts.backends.rewards import reward_model
from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import read_jsonl, write_json, write_jsonl
from scripts.infrastructure.stage_log import logged


def _finite_or_none(x: float):
    return x if x is not None and math.isfinite(x) else None


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        graphs = {s["id"]: s.get("graph") for s in read_jsonl(snakemake.input.solvable)}
        stream = read_jsonl(snakemake.input.stream)
        items = [{**r, "graph": graphs.get(r["id"])} for r in stream]
        name, spec = snakemake.wildcards.reward, snakemake.params.spec
        if spec.get("trained_on"):  # the reward model this pipeline trained for the student
            spec = {**spec, "model": snakemake.input.model}
        rm = reward_model(spec, name)
        scores = rm.score(items)
        details = getattr(rm, "details", None) or [{} for _ in scores]
        write_jsonl(
            snakemake.output.scores,
            [{**d, "id": r["id"], "reward": _finite_or_none(s)} for r, s, d in zip(stream, scores, details)],
        )
        info = dict(getattr(rm, "info", {}))
        timing = {k: info.pop(k) for k in ("seconds", "tokens_per_s") if k in info}  # varies run to run
        summary = {
            "stream": snakemake.wildcards.stream,
            "reward_model": name,
            "backend": spec["backend"],
            **info,
            **mean_ci95(scores),
        }
        write_json(snakemake.output.summary, summary)
        print(summary)
        if timing:
            print(
                f"throughput: {timing['tokens_per_s']:.1f} tokens/s ({info['tokens']} tokens in "
                f"{timing['seconds']:.2f} s, batch size {spec['batch_size']})"
            )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
