"""Rule ``oracle_estimate`` (a target: ``snakemake oracle_estimate``): what every oracle stream and
its retention judge will send and cost, before any paid call (``scripts.analysis.oracle_estimate``).
Printed as well as written."""

import sys

from scripts.analysis.oracle_estimate import estimate, markdown
from scripts.infrastructure.records import write_json, write_text
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    p = snakemake.params
    with logged(snakemake.log[0], snakemake.threads):
        est = estimate(p.sets, p.streams, p.oracles, p.costs, p.caches, p.retention)
        text = markdown(est)
        write_json(snakemake.output.json, est)
        write_text(snakemake.output.markdown, text)
        print(text)
    print(text, file=sys.__stdout__)  # the console too: the point of the target is to read it


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
