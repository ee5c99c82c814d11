"""configs/paper.yaml, the paper's whole design: it validates against the schema, names only real
models and endpoints, and its dry run through the SLURM profile (derived as tests/test_slurm.py
derives it) lists every job with each stage's resources from the config. Dry runs only: nothing
is downloaded, sampled or trained."""

import copy
import itertools
import re
import time

import pytest
import yaml
from snakemake.utils import validate

from scripts.data.problems import normalise
from scripts.infrastructure import study_config

from test_slurm import REPO, STAGE, derived_slurm_profile, jobs_in_dry_run, snakemake

PAPER = REPO / "configs" / "paper.yaml"
SCHEMA = REPO / "schemas" / "config.schema.yaml"
# The run is standalone: without this flag Snakemake merges the file over the Snakefile's
# `configfile: config.yaml` and the organism's student, benchmarks, oracle and reward stay in.
STANDALONE = "--replace-workflow-config"
KEY = "OPENAI_API_KEY"


def paper() -> dict:
    """The paper config as the workflow sees it: the schema's defaults filled in."""
    config = yaml.safe_load(PAPER.read_text())
    validate(config, str(SCHEMA))
    return config


def workdir(tmp_path):
    """A working directory laid out like the repository root, where a cluster run starts: the
    config's relative prompt paths (prompts/*.v1.md) resolve, and the Snakefile's
    `configfile: config.yaml` finds the organism's config (looked up in the working directory)."""
    work = tmp_path / "work"
    work.mkdir(parents=True)
    for name in ("prompts", "config.yaml"):
        (work / name).symlink_to(REPO / name)
    return work


# -- the config itself --------------------------------------------------------------------------


def test_paper_config_validates_and_passes_the_workflows_own_checks(monkeypatch):
    config = paper()
    monkeypatch.chdir(REPO)  # prompt template paths are relative to the repository root
    study_config.check(config, environ={KEY: "dummy"})


def test_paper_config_is_the_papers_design():
    c = paper()
    assert [s["model"] for s in c["students"].values()] == [
        "Qwen/Qwen2.5-Math-1.5B",
        "Qwen/Qwen2.5-Math-7B",
        "meta-llama/Llama-3.2-3B",
        "deepseek-ai/deepseek-math-7b-base",
    ]
    pool = c["problems"]["pool"]
    assert (pool["path"], pool["n"], pool["columns"]["answer"]) == ("AI-MO/NuminaMath-CoT", 100000, None)
    assert (c["native_traces"]["n"], c["native_traces"]["temperature"], c["native_traces"]["max_new_tokens"]) == (
        8,
        1.0,
        4096,
    )
    assert set(c["streams"]) == {
        "slm_rft",
        "oracle_refined",
        "oracle_synthesized",
        "reference",
        "style_aligned",
        "style_aligned_gpt",
    }
    assert c["streams"]["style_aligned"]["oracle"] == "qwen72b" and c["streams"]["style_aligned_gpt"]["oracle"] == "gpt"
    assert c["oracles"]["qwen72b"]["base_url"] and c["oracles"]["qwen72b"]["api_key_env"] is None
    assert c["oracles"]["gpt"]["api_key_env"] == KEY
    assert c["rewards"][c["primary_reward"]]["model"] == "Qwen/Qwen2.5-Math-RM-72B"
    assert {r["backend"] for r in c["rewards"].values()} == {
        "outcome_reward",
        "sequence_classifier",
        "process_reward",
        "token_logit",
    }
    t = c["training"]
    assert (t["objectives"], t["method"], t["lr"], t["batch_size"], t["epochs"], t["seeds"]) == (
        ["sft", "dft"],
        "full",
        [5e-5, 2e-5],
        [256, 128],
        [1],
        [0],
    )
    assert (
        t["hparams"]["bf16"],
        t["hparams"]["max_length"],
        t["hparams"]["lr_scheduler"],
        t["hparams"]["warmup_ratio"],
    ) == (True, 2048, "cosine", 0.1)
    e = c["evaluation"]
    assert (e["k"], e["temperature"], e["max_new_tokens"]) == (16, 1.0, 4096)
    assert set(c["problems"]["benchmarks"]) == {"math500", "minerva_math", "olympiadbench", "aime24", "amc23"}
    assert c["problems"]["benchmarks"]["math500"]["path"] == "HuggingFaceH4/MATH-500"
    assert c["resources"]["reward"]["gpu"] > 1  # Qwen2.5-Math-RM-72B does not fit one GPU


def test_paper_config_names_no_builtin_model_oracle_or_reward():
    c = paper()  # defaults filled: a student without `model` would be `builtin` here
    assert not [n for n, s in c["students"].items() if s["model"] == "builtin"]
    assert not [n for n, o in c["oracles"].items() if o["backend"] == "builtin"]
    assert not [n for n, r in c["rewards"].items() if r["backend"] == "builtin"]
    sets = {"pool": c["problems"]["pool"], **c["problems"]["benchmarks"]}
    assert not [n for n, s in sets.items() if s["source"] == "generator"]


def test_every_hub_revision_is_marked_to_pin():
    """Revisions cannot be looked up offline: each is null and carries a `# PIN:` command."""
    c, text = paper(), PAPER.read_text()
    repos = [s["model"] for s in c["students"].values()] + [r["model"] for r in c["rewards"].values()]
    repos += [s["path"] for s in [c["problems"]["pool"], *c["problems"]["benchmarks"].values()]]
    repos += [o["model"] for o in c["oracles"].values() if o["base_url"]]  # the vLLM-served model
    for repo in repos:
        assert re.search(rf"^\s*# PIN: .*_info\('{re.escape(repo)}'\)\.sha", text, re.M), f"no PIN command for {repo}"


def test_student_prompt_templates_render_a_literal_boxed():
    # The stages fill templates with str.format, so a literal \boxed{} must be written \boxed{{}}.
    for name, st in paper()["students"].items():
        prompt = st["prompt_template"].format(problem="What is 1+1?")
        assert "What is 1+1?" in prompt and "\\boxed{}" in prompt, name
        assert "{" not in prompt.replace("\\boxed{}", ""), name


def test_olympiadbench_list_answers_become_plain_gold_answers():
    # math-ai/olympiadbench's final_answer is a list like ['$3$']
    spec = copy.deepcopy(paper()["problems"]["benchmarks"]["olympiadbench"])
    col = spec["columns"]
    rows = [{col["problem"]: "Find the least positive integer n with n^2 = 9.", col["answer"]: ["$3$"]}]
    assert normalise("olympiadbench", spec, rows)[0]["answer"] == "3"


# -- the dry run through the SLURM profile ------------------------------------------------------


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory):
    """Every job of the paper config, through profiles/slurm (as tests/test_slurm.py derives it)."""
    tmp = tmp_path_factory.mktemp("paper")
    mp = pytest.MonkeyPatch()
    mp.setenv(KEY, "dummy")  # the config check refuses a missing key before any job
    try:
        start = time.monotonic()
        out = snakemake(workdir(tmp), derived_slurm_profile(tmp / "profile"), [PAPER], STANDALONE, "-n")
        seconds = time.monotonic() - start
    finally:
        mp.undo()
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    print(f"paper config dry run through the SLURM profile: {len(jobs_in_dry_run(text))} jobs in {seconds:.1f} s")
    return {"jobs": jobs_in_dry_run(text), "text": text, "seconds": seconds}


def counts(jobs) -> dict[str, int]:
    found: dict[str, int] = {}
    for rule, _ in jobs:
        found[rule] = found.get(rule, 0) + 1
    return found


@pytest.mark.e2e
def test_paper_dry_run_lists_every_job_of_the_design(paper_dry_run):
    c = paper()
    students, streams = len(c["students"]), len(c["streams"])
    t = c["training"]
    grid = len(t["objectives"]) * len(t["lr"]) * len(t["batch_size"]) * len(t["epochs"]) * len(t["seeds"])
    assert len(study_config.runs(c)) == students * streams * grid == 4 * 6 * 2 * 2 * 2 * 1 * 1
    expected = {
        "problem_pool": 1,
        "benchmark_problems": len(c["problems"]["benchmarks"]),
        "student": students,
        "native_traces": students,
        "rejection_sampling": students,
        "drift": students,
        "evaluate_base": students,
        "evaluate_base_greedy": students,
        "stream": students * streams,
        "adaptation_cost": students * streams,
        "reward_scores": students * streams * len(c["rewards"]),
        "fine_tune": students * streams * grid,
        "evaluate_checkpoint": students * streams * grid,
        "report": 1,
        "paradox": 1,
        "manifest": 1,
    }
    if "rules/retention.smk" in (REPO / "Snakefile").read_text():  # the judge scores each rewrite
        expected["retention"] = students * sum(s["kind"] == "oracle" for s in c["streams"].values())
    found = counts(paper_dry_run["jobs"])
    assert {rule: found.get(rule, 0) for rule in expected} == expected
    # every fine-tuning run of the grid, by its wildcards, and only the paper's students
    text = paper_dry_run["text"]
    for st, s, o, lr, bs in itertools.product(c["students"], c["streams"], t["objectives"], t["lr"], t["batch_size"]):
        d = f"results/training/{st}/{s}/{o}/lr{study_config.fmt_lr(lr)}_bs{bs}_ep1_seed0/train.json"
        assert d in text, d
    assert "results/student/tiny/" not in text


@pytest.mark.e2e
def test_paper_dry_run_gives_each_rule_its_stages_resources_from_the_config(paper_dry_run):
    res = paper()["resources"]
    wrong = {}
    for rule, got in paper_dry_run["jobs"]:
        if rule == "all":
            continue
        want = res[STAGE.get(rule, "light")]
        # several nodes (training): GPUs per node as SLURM's per-node gres, and the node count
        nodes = want.get("nodes", 1)
        gpus = int(got.get("gpu", 0)) if nodes == 1 else int(got.get("gres", "gpu:0").rsplit(":", 1)[1])
        have = (gpus, int(got["mem_mb"]), int(got["runtime"]), int(got.get("nodes", 1)))
        if have != (want["gpu"], want["mem_mb"], want["runtime"], nodes) or "gpu_model" in got:
            wrong[rule] = (have, want)
        if ("gres" in got) != (nodes > 1):
            wrong[rule] = got
    assert not wrong, f"rules whose resources are not resources.<stage> of configs/paper.yaml: {wrong}"
    gpu_rules = {rule for rule, got in paper_dry_run["jobs"] if int(got.get("gpu", 0)) or "gres" in got}
    assert {"native_traces", "adaptation_cost", "fine_tune", "reward_scores", "evaluate_checkpoint"} <= gpu_rules
    assert "Group job evaluation" in paper_dry_run["text"]


@pytest.mark.e2e
def test_paper_dag_builds_within_30_seconds(paper_dry_run):
    print(f"paper DAG (dry run, {len(paper_dry_run['jobs'])} jobs): {paper_dry_run['seconds']:.1f} s")
    assert paper_dry_run["seconds"] <= 30


@pytest.mark.e2e
def test_paper_run_without_the_api_key_stops_before_any_job_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY, raising=False)
    out = snakemake(workdir(tmp_path), derived_slurm_profile(tmp_path / "profile"), [PAPER], STANDALONE, "-n")
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert f"oracles.gpt.api_key_env: the environment variable {KEY} is not set" in text, text[-3000:]
    assert "Job stats" not in text  # refused while reading the config, before any job was planned


@pytest.mark.e2e
def test_paper_config_layered_over_config_yaml_keeps_organism_keys(tmp_path, monkeypatch):
    """Why the run is standalone: a plain --configfile merges over the Snakefile's config.yaml."""
    monkeypatch.setenv(KEY, "dummy")
    out = snakemake(workdir(tmp_path), derived_slurm_profile(tmp_path / "profile"), [PAPER], "-n", "--quiet", "rules")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    found = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out.stdout + out.stderr, re.M))
    assert int(found["student"]) == len(paper()["students"]) + 1  # the organism's `tiny` joins in
