"""Rules ``problem_pool`` and ``benchmark_problems``: one problem set in the study's schema."""

from scripts.data.problems import load_problem_set
from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import write_jsonl
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        records = load_problem_set(snakemake.wildcards.get("benchmark", "pool"), snakemake.params.spec)
        write_jsonl(snakemake.output[0], records)
        print(f"wrote {len(records)} problems to {snakemake.output[0]}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
