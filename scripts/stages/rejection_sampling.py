"""Rule ``rejection_sampling``: the first correct native trace per problem, and the solvable set
every stream shares (``scripts.data.rejection_sampling``)."""

from collections import Counter

from scripts.data.rejection_sampling import judge, select
from scripts.data.verification import UNEXTRACTED
from scripts.infrastructure.records import read_jsonl, write_json, write_jsonl
from scripts.infrastructure.stage_log import StageError, logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params.spec
        problems, traces = read_jsonl(snakemake.input.pool), read_jsonl(snakemake.input.traces)
        extraction = snakemake.params.extraction
        verdicts = judge(problems, traces, p["timeout_s"], snakemake.threads, extraction)
        write_jsonl(
            snakemake.output.verdicts,
            [
                {
                    "id": t["id"],
                    "sample": t["sample"],
                    "correct": v.correct,
                    "reason": v.reason,
                    "extracted": v.extracted,
                    "source": v.source,
                }
                for t, v in zip(traces, verdicts)
            ],
        )
        solvable = select(problems, traces, verdicts)
        if not solvable:
            raise StageError("rejection sampling kept no problem: the student solved none of the pool")
        write_jsonl(snakemake.output.solvable, solvable)
        reasons = Counter(v.reason for v in verdicts)
        write_json(
            snakemake.output.summary,
            {
                "pool": len(problems),
                "traces": len(traces),
                "solvable": len(solvable),
                "solvable_fraction": len(solvable) / len(problems),
                "sample_accuracy": reasons["correct"] / max(1, len(traces)),
                "reasons": dict(reasons),
                "answer_extraction": extraction,
                "unextracted_share": sum(reasons[r] for r in UNEXTRACTED) / max(1, len(traces)),
            },
        )
        print(f"solvable: {len(solvable)} of {len(problems)} problems; verdicts {dict(reasons)}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
