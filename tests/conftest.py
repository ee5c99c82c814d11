import os

# Nothing in the tests may reach a model or dataset hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import runpy  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "seed": 7,
    "corpus_size": 300,
    "min_steps": 2,
    "max_steps": 3,
    "max_value": 60,
    "foreign_style_fraction": 0.05,
    "slip_rate": 0.1,
    "carried_error_rate": 0.1,
    "vocab_size": 320,
    "architecture": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "layers": 2,
        "heads": 2,
        "kv_heads": 1,
        "max_position_embeddings": 256,
    },
    "pretraining": {
        "lr": 3e-3,
        "batch_size": 16,
        "micro_batch_size": 16,
        "epochs": 1,
        "max_steps": 5,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "max_length": 200,
        "bf16": False,
    },
}
TEMPLATE = "Problem: {problem}\nSolution:\n"


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory):
    """A briefly pretrained built-in student (``student.json`` record), built offline."""
    from scripts.organism.student import build_builtin_student

    out = tmp_path_factory.mktemp("student") / "model"
    build_builtin_student(TINY, TEMPLATE, str(out), seed=0)
    return {"name": "tiny", "path": str(out), "revision": None, "prompt_template": TEMPLATE}


def run_stage(stage: str, snakemake) -> None:
    """Run ``scripts/stages/<stage>.py`` as Snakemake's ``script:`` directive does: as
    ``__main__``, with a ``snakemake`` object in its globals (nothing imports a stage)."""
    runpy.run_path(
        str(REPO / "scripts" / "stages" / f"{stage}.py"), init_globals={"snakemake": snakemake}, run_name="__main__"
    )


def markdown_rows(text: str) -> list[list[str]]:
    """The body rows of every Markdown table in ``text``, as stripped cells (headers and
    separator lines left out)."""
    import re

    lines = text.splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.startswith("|") or re.fullmatch(r"\|[-:| ]+\|", line):
            continue
        if i + 1 < len(lines) and re.fullmatch(r"\|[-:| ]+\|", lines[i + 1]):
            continue  # a header
        rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows
