"""Rule ``freeze``: the frozen archive of what is expensive or cannot be made again
(``scripts.infrastructure.archive``)."""

from scripts.infrastructure.archive import freeze
from scripts.infrastructure.provenance import ROOT, config_hash, git_state
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        info = {"config_sha256": config_hash(snakemake.params.config), "git": git_state(ROOT)}
        n = freeze(snakemake.params.paths, "results", snakemake.output[0], info)
        print(f"froze {n} files into {snakemake.output[0]}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
