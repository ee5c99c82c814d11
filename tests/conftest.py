import os

# Nothing in the tests may reach a model or dataset hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from scripts.infrastructure.stage_log import same_kernels_on_every_cpu  # noqa: E402

same_kernels_on_every_cpu()  # what every stage does: models the tests load in-process compute as the stages' do

import re  # noqa: E402
import runpy  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CONFIGS = [str(REPO / "config.yaml"), str(REPO / "tests" / "configs" / "ci.yaml")]


def snakemake_command(workdir, configs, *args, cores: int = 2) -> list[str]:
    """The snakemake command line for this repository's Snakefile, run in ``workdir`` with the
    config files ``configs`` layered in order (the tests' and the speed benchmark's)."""
    return [
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        *map(str, configs),
        "--cores",
        str(cores),
        *args,
    ]


def snakemake(workdir, *args, check=True, edit=None):
    """Run snakemake on the CI-sized config; ``edit`` is YAML layered on top, as a user would."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    configs = list(CONFIGS)
    if edit:
        layer = Path(workdir).parent / f"{Path(workdir).name}-edit.yaml"
        layer.write_text(edit)
        configs.append(str(layer))
    cmd = snakemake_command(workdir, configs, *args)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}")
    return out


def planned_jobs(out) -> dict[str, int]:
    """Job counts from a dry run's 'Job stats' table."""
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory):
    """The CI-sized DAG, run once per test session and shared by every test that only reads its
    outputs or dry-runs against it. A test that changes it works on a copy of the folder."""
    workdir = tmp_path_factory.mktemp("ci_run")
    snakemake(workdir)
    return workdir


@pytest.fixture(scope="session")
def openai_server(tmp_path_factory):
    """vLLM's OpenAI server on 127.0.0.1 (tests/vllm_server.py), started once per test session
    for every test that talks to a real OpenAI-compatible endpoint: the oracle client's, the
    budget's and the secrets' tests. It keeps no state between requests that a test could leave
    for another (each test has its own cache file, proxy and key check). Also its model folder
    and the chat template it applies (the budget estimate counts tokens with both)."""
    import vllm_server

    work = tmp_path_factory.mktemp("vllm_server")
    model = vllm_server.build_student(work / "model")
    proc, srv = vllm_server.start(model, work)
    yield SimpleNamespace(srv=srv, model=model, template=work / "chat_template.jinja")
    vllm_server.stop(proc)


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
