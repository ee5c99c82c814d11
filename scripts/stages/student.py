"""Rule ``student``: the student record every later stage loads (``student.json``). A hub model
or a local folder is named as it is (pinned by revision); the organism's built-in student is
built and pretrained here first."""

from pathlib import Path

from scripts.backends.models import STUDENT_BUILDERS, student_source
from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import write_csv, write_json
from scripts.infrastructure.stage_log import logged


def main(snakemake) -> None:
    folder = Path(snakemake.output.student).parent
    with logged(snakemake.log[0], snakemake.threads):
        if replayed(snakemake, folders=(str(folder),)):
            return
        p = snakemake.params.spec
        record = {
            "name": snakemake.wildcards.student,
            "prompt_template": p["prompt_template"],
            "stop_tokens": p["stop_tokens"],
            "revision": p["revision"],
            "path": p["model"],
        }
        if student_source(p) == "builtin":
            build = STUDENT_BUILDERS.load("builtin")
            curve = build(p["builtin"], p["prompt_template"], str(folder / "model"), p["seed"])
            write_csv(folder / "pretraining_curve.csv", curve, ["step", "loss", "lr"])
            record["path"] = str(folder / "model")
        write_json(snakemake.output.student, record)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
