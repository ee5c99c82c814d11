"""Rule ``retention``: how much of the student's source trace each rewrite of an oracle stream
keeps (``scripts.analysis.retention``)."""

from scripts.analysis.retention import retention
from scripts.backends.oracles.budget import call_spec
from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import read_jsonl, write_json, write_jsonl
from scripts.infrastructure.stage_log import StageError, logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):  # the archived judgements: a replay never pays the judge again
            return
        p = snakemake.params
        name = snakemake.wildcards.stream
        if p.oracle is None:
            raise StageError(f"stream {name} is not an oracle stream: it rewrites nothing to judge")
        graphs = {s["id"]: s.get("graph") for s in read_jsonl(snakemake.input.solvable)}
        spec = call_spec(snakemake.config, p.oracle_name, p.oracle_cache)  # with its budget caps (see streams)
        records, summary = retention(read_jsonl(snakemake.input.stream), graphs, spec, p.oracle_cache, p.sample, p.seed)
        usage = summary.pop("oracle")
        summary = {"stream": name, "judge": p.oracle_name, **summary, "oracle_usage": usage}
        write_jsonl(snakemake.output.scores, records)
        write_json(snakemake.output.summary, summary)
        print({k: summary[k] for k in ("stream", "judged", "unscored", "judge_score", "edit_similarity")})


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
