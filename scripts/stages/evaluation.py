"""Rules ``evaluate_base``, ``evaluate_base_greedy`` and ``evaluate_checkpoint``: utility, Avg@k
per benchmark suite (``scripts.analysis.utility``), of the untrained student or a fine-tuned one
(a full checkpoint is loaded as a model, a LoRA adapter on top of the base student)."""

import numpy as np

from scripts.analysis.utility import evaluate
from scripts.backends.generation import generator
from scripts.infrastructure.records import read_json, read_jsonl, write_json, write_jsonl
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params
        student = read_json(snakemake.input.student)
        checkpoint = snakemake.input.get("checkpoint")
        model, adapter = student, None
        if checkpoint and p.method == "full":
            model = {**student, "path": checkpoint, "revision": None}
        elif checkpoint:
            adapter = checkpoint
        gen = generator(p.spec["backend"], model, adapter=adapter, batch_size=p.spec["batch_size"], vllm=p.vllm)
        benchmarks = {name: read_jsonl(path) for name, path in zip(p.benchmarks, snakemake.input.benchmarks)}
        scores, samples = evaluate(gen, student, benchmarks, p.spec, snakemake.threads, p.extraction)
        write_jsonl(snakemake.output.samples, samples)
        write_json(
            snakemake.output.scores,
            {
                "benchmarks": scores,
                "k": p.spec["k"],
                "temperature": p.spec["temperature"],
                "avg_at_k": float(np.mean([s["avg_at_k"] for s in scores.values()])),
            },
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
