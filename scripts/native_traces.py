"""Native traces: N samples per pool problem from the student at temperature T (paper: 8 at
1.0). Each record keeps its finish reason and token counts, so rejection sampling can refuse
unfinished generations and the report can say what sampling cost."""


from scripts.archive import replayed
from scripts.generation import backend
from scripts.records import read_json, read_jsonl, write_jsonl
from scripts.stage import logged


def sample_native_traces(student: dict, problems: list[dict], spec: dict, vllm: dict | None = None) -> list[dict]:
    gen = backend(spec["backend"], student, batch_size=spec["batch_size"], vllm=vllm)
    prompts = [student["prompt_template"].format(problem=p["problem"]) for p in problems]
    samples = gen.sample(prompts, spec["n"], spec["temperature"], spec["max_new_tokens"], spec["seed"],
                         desc="native traces")
    return [{"id": p["id"], "sample": j, "trace": s.text, "finish_reason": s.finish_reason,
             "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens}
            for p, row in zip(problems, samples) for j, s in enumerate(row)]


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        traces = sample_native_traces(read_json(snakemake.input.student), read_jsonl(snakemake.input.pool),
                                      snakemake.params.spec, snakemake.params.vllm)
        write_jsonl(snakemake.output[0], traces)
        print(f"{len(traces)} native traces, "
              f"{sum(t['finish_reason'] == 'stop' for t in traces)} finished")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
