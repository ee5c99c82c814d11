"""Rule ``manifest``: the run manifest (``scripts.infrastructure.manifest``)."""

from scripts.infrastructure.manifest import build
from scripts.infrastructure.provenance import ROOT
from scripts.infrastructure.records import write_json
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params
        manifest = build(
            p.config,
            str(ROOT),
            dict(zip(p.students, snakemake.input.students)),
            dict(zip(p.problem_sets, snakemake.input.problems)),
        )
        write_json(snakemake.output[0], manifest, sort_keys=False)  # the config's order
        print(f"manifest: {len(manifest['artifacts'])} artifacts, config {manifest['config_sha256'][:12]}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
