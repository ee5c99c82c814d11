"""Rules ``problem_pool`` and ``benchmark_problems``: one problem set in the study's schema. The
pool is decontaminated against every benchmark problem before it is written
(``scripts.data.decontamination``), after the embedded default's planted copies, if any, are
added to it."""

from scripts.data.decontamination import decontaminate, plant
from scripts.data.problems import load_problem_set
from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import read_jsonl, write_json, write_jsonl
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        p, out = snakemake.params, snakemake.output
        records = load_problem_set(snakemake.wildcards.get("benchmark", "pool"), p.spec)
        d = p.decontamination
        if d is not None:  # the pool
            benchmarks = {name: read_jsonl(path) for name, path in zip(p.benchmarks, snakemake.input.benchmarks)}
            planted = plant(benchmarks, d["plant"])
            records += planted
            report = {"enabled": d["enabled"], "planted": [r["id"] for r in planted]}
            if d["enabled"]:
                records, found = decontaminate(records, benchmarks, d["ngram"], d["threshold"])
                report.update(found)
                print(
                    f"decontamination: removed {len(found['removed'])} of {found['pool_before']} pool problems "
                    f"({len(planted)} of them planted), per benchmark {found['per_benchmark']}"
                )
            write_json(out.decontamination, report)
        write_jsonl(out.problems, records)
        print(f"wrote {len(records)} problems to {out.problems}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
