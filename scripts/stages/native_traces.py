"""Rule ``native_traces``: N samples per pool problem from the student at temperature T (paper:
8 at 1.0). Each record keeps its finish reason and token counts, so rejection sampling can
refuse unfinished generations and the report can say what sampling cost."""

from scripts.backends.generation import generator
from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import read_json, read_jsonl, write_jsonl
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        spec = snakemake.params.spec
        student, problems = read_json(snakemake.input.student), read_jsonl(snakemake.input.pool)
        gen = generator(spec["backend"], student, batch_size=spec["batch_size"], vllm=snakemake.params.vllm)
        prompts = [student["prompt_template"].format(problem=p["problem"]) for p in problems]
        samples = gen.sample(
            prompts, spec["n"], spec["temperature"], spec["max_new_tokens"], spec["seed"], desc="native traces"
        )
        traces = [
            {
                "id": p["id"],
                "sample": j,
                "trace": s.text,
                "finish_reason": s.finish_reason,
                "prompt_tokens": s.prompt_tokens,
                "completion_tokens": s.completion_tokens,
            }
            for p, row in zip(problems, samples)
            for j, s in enumerate(row)
        ]
        write_jsonl(snakemake.output[0], traces)
        print(f"{len(traces)} native traces, {sum(t['finish_reason'] == 'stop' for t in traces)} finished")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
