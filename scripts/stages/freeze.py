"""Rule ``freeze``: the frozen archive of what is expensive or cannot be made again
(``scripts.infrastructure.archive``); with ``archive.wheelhouse``, also what reinstalls and
replays it offline (``scripts.infrastructure.wheelhouse``)."""

import sys

from scripts.infrastructure.archive import add_files, freeze
from scripts.infrastructure.locks import stacks
from scripts.infrastructure.provenance import ROOT, config_hash, git_state
from scripts.infrastructure.stage_log import StageError, logged
from scripts.infrastructure.wheelhouse import add_offline, config_problems


def main(snakemake) -> None:
    out = snakemake.output[0]
    with logged(snakemake.log[0], snakemake.threads):
        problems = config_problems(snakemake.params.config)
        if problems:
            raise StageError("; ".join(problems))
        info = {"config_sha256": config_hash(snakemake.params.config), "git": git_state(ROOT)}
        n = freeze(snakemake.params.paths, "results", out, info)
        print(f"froze {n} files into {out}")
        if snakemake.params.wheelhouse:
            offline = add_offline(out, ROOT, stacks(ROOT)["main"], snakemake.input.manifest[0], sys.executable)
            added = add_files(out, {"offline": offline})
            print(f"added {added} files to replay it offline: {offline['wheels']} wheels of {offline['lock']}")
            for name, why in offline["environment_differs_from_lock"].items():
                print(f"warning: the run's environment is not the locked set: {name}: {why}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
