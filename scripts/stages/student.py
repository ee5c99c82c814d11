"""Rule ``student``: the student record every later stage loads (``student.json``). A hub model
or a local folder is named as it is (pinned by revision); the organism's built-in student is
built and pretrained here first."""

from pathlib import Path

from scripts.backends.models import STUDENT_BUILDERS, load_tokenizer, student_source
from scripts.infrastructure.archive import replayed
from scripts.infrastructure.records import write_csv, write_json
from scripts.infrastructure.stage_log import StageError, logged


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
        if p["stop_tokens"]:  # known only once the tokenizer is here (built, or a hub download)
            vocabulary = load_tokenizer(record).get_vocab()
            bad = [t for t in p["stop_tokens"] if t not in vocabulary]
            if bad:
                where = (
                    "the built-in student's tokenizer (checked once it is built: its vocabulary is learned "
                    "from its corpus, so it cannot be known before the first job)"
                    if student_source(p) == "builtin"
                    else f"the tokenizer of {p['model']}"
                )
                raise StageError(
                    f"students.{record['name']}.stop_tokens: {bad} are not single tokens of {where}; each stop "
                    "token must be one token of the student's tokenizer (e.g. '<|im_end|>' for Qwen2.5's chat "
                    "format), or leave stop_tokens empty"
                )
        write_json(snakemake.output.student, record)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
