"""Rule ``stream``: one data stream over the solvable set (``scripts.data.streams``)."""

from collections import Counter

from scripts.backends.oracles.budget import call_spec
from scripts.data.streams import build_stream, summary
from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import read_jsonl, write_json, write_jsonl
from scripts.infrastructure.stage_log import StageError, logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake):
            return
        p = snakemake.params
        name = snakemake.wildcards.stream
        # the oracle's full config (its params leave out budget caps and batch settings, which
        # decide whether and how requests are sent, not what they answer)
        spec = call_spec(snakemake.config, p.spec["oracle"], p.oracle_cache) if p.oracle else None
        kept, rejected, usage = build_stream(
            name, p.spec, read_jsonl(snakemake.input.solvable), spec, p.timeout_s, snakemake.threads, p.oracle_cache
        )
        if usage:
            print(f"oracle: {usage}")
        if not kept:
            raise StageError(f"stream {name} is empty: {Counter(r['reason'] for r in rejected).most_common(3)}")
        write_jsonl(snakemake.output.stream, kept)
        write_jsonl(snakemake.output.rejected, rejected)
        write_json(snakemake.output.summary, summary(name, kept, rejected, usage))
        print(f"{name}: {len(kept)} traces kept, {len(rejected)} rejected")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
