"""Rule ``drift``: drift beyond perplexity, per student over all its streams
(``scripts.analysis.drift``): tables, figures and ``drift.md``."""

from pathlib import Path

from scripts.analysis.drift import analyse, load_stream
from scripts.infrastructure.stage_log import StageError, logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params
        if p.reference_stream not in p.streams:
            raise StageError(
                f"adaptation_cost.drift.reference_stream: {p.reference_stream!r} is not a stream of this "
                f"run (streams: {list(p.streams)})"
            )
        streams = {
            name: load_stream(s, t, z)
            for name, s, t, z in zip(
                p.streams, snakemake.input.summaries, snakemake.input.per_trace, snakemake.input.tokens
            )
        }
        analyse(streams, p.reference_stream, p.top_tokens, str(Path(snakemake.output.drift).parent))
        print(f"drift analyses of {len(streams)} streams against {p.reference_stream} written")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
