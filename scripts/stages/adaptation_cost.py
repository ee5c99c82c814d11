"""Rule ``adaptation_cost``: the student's one forward pass over a stream (the generation
backend's ``score``), turned into perplexity (global, Q1..Q4), the low-probability fraction, the
Rank-Surprisal Ratio, the learnability probe and the token data for drift
(``scripts.analysis.adaptation_cost``).
Throughput goes to the job's log; the artifacts stay byte-identical."""

import time

import numpy as np

from scripts.analysis.adaptation_cost import per_trace, stream_summary, token_data
from scripts.backends.generation import generator
from scripts.infrastructure.records import read_json, read_jsonl, write_json, write_jsonl
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params
        student = read_json(snakemake.input.student)
        stream = read_jsonl(snakemake.input.stream)
        prompts = [student["prompt_template"].format(problem=r["problem"]) for r in stream]
        start = time.perf_counter()
        # float32 on a GPU too: perplexities are compared across streams to a few digits
        scorer = generator(p.backend, student, batch_size=p.batch_size, vllm=p.vllm, gpu_dtype="float32")
        traces = scorer.score(prompts, [r["trace"] for r in stream])
        seconds = time.perf_counter() - start
        write_jsonl(snakemake.output.per_trace, per_trace(stream, traces, p.low_prob_threshold, p.rank_clip))
        np.savez_compressed(
            snakemake.output.tokens,
            trace_ids=np.array([r["id"] for r in stream], dtype=np.str_),
            **token_data(traces, scorer.tokenizer),
        )
        summary = stream_summary(snakemake.wildcards.stream, stream, traces, p.low_prob_threshold, p.rank_clip)
        write_json(snakemake.output.summary, summary)
        print(summary)
        tokens = sum(len(t.ids) for t in traces)
        print(
            f"throughput: {tokens / seconds:.1f} completion tokens/s ({tokens} tokens of {len(traces)} traces in "
            f"{seconds:.2f} s, batch size {p.batch_size})"
        )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
