"""End to end: the real snakemake CLI on the CI-sized config, in a scratch working directory."""

import ast
import json
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from conftest import CONFIGS, REPO, SNAKEMAKE, planned_jobs, snakemake

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished_run(ci_run):
    return ci_run


def test_full_run_reports_every_stream_and_the_base_student(finished_run):
    report = finished_run / "results" / "report"
    table = pl.read_csv(report / "streams.csv")
    streams = {"slm_rft", "oracle_refined", "oracle_synthesized", "reference", "style_aligned"}
    assert set(table["stream"]) == streams | {"base"}
    required = [
        "student",
        "stream",
        "objective",
        "lr",
        "batch_size",
        "seed",
        "n_examples",
        "reward_mean",
        "ppl",
        "ppl_q1",
        "ppl_q2",
        "ppl_q3",
        "ppl_q4",
        "avg_at_k",
        "avg_at_k_two_step",
        "avg_at_k_three_step",
        "avg_at_k_four_step",
    ]
    assert all(c in table.columns for c in required)
    runs = table.filter(pl.col("stream") != "base")
    assert len(runs) == len(streams) * 2 and set(runs["objective"]) == {"sft", "dft"}
    assert runs["ppl"].is_not_null().all() and (runs["ppl"] > 1).all()
    assert runs["avg_at_k"].is_between(0, 1).all()
    for name in ("table1.md", "mechanism.md"):
        text = (report / name).read_text()
        assert all(s in text for s in streams)
    paradox = (report / "paradox.md").read_text()
    assert "## Verdict (generated from the numbers below)" in paradox and "greedy" in paradox
    figures = list((report / "figures").glob("*.png"))
    assert len(figures) >= 4 and all(f.stat().st_size > 1000 for f in figures)
    assert not (report / "published_comparison.md").exists()  # the CI config has no published numbers


def test_snakemake_report_builds_the_html_report_with_captions_tables_and_figures(finished_run, tmp_path):
    html = tmp_path / "report.html"
    snakemake(finished_run, "--report", str(html))
    text = html.read_text()
    assert html.stat().st_size > 500_000  # the figures are embedded
    assert "The Quality-Utility Paradox: Why High-Reward Data Impairs Small" in text  # report/workflow.rst
    assert "sorted by mean reward (highest first; reward model" in text  # report/table1.rst
    assert "(log scale), one panel per objective and learning rate" in text  # report/paradox_budget.rst
    assert "# Table 1: perceived quality vs utility" in text  # table1.md itself, inside its caption
    for name in (
        "ppl_vs_utility",
        "reward_vs_utility",
        "segmented_ppl",
        "training_curves",
        "retention",
        "paradox_budget",
        "q1_loss_attribution",
        "token_frequency_shift",
        "learner_compatibility",
    ):
        assert f"{name}.png" in text, name


def test_every_stream_covers_the_same_solvable_problems(finished_run):
    import json

    res = finished_run / "results"
    solvable = {json.loads(line)["id"] for line in open(res / "rejection_sampling/tiny/solvable.jsonl")}
    for stream in res.glob("streams/tiny/*.summary.json"):
        name = stream.name.removesuffix(".summary.json")
        ids = {json.loads(line)["id"] for line in open(res / f"streams/tiny/{name}.jsonl")}
        rejected = {json.loads(line)["id"] for line in open(res / f"streams/tiny/{name}.rejected.jsonl")}
        assert ids | rejected == solvable and not ids & rejected


def test_a_second_run_has_nothing_to_do(finished_run):
    assert planned_jobs(snakemake(finished_run, "-n")) == {}


# --- rerun scope: what an edit replans --------------------------------------------------------------

# The CI-sized DAG: 58 jobs. Sets of jobs below are what each edit must replan, by rule. Two
# reward models score every stream: the built-in process reward and an outcome reward model
# trained on the student's own native traces (rewards.orm).
UPSTREAM = {"problem_pool": 1, "benchmark_problems": 3}
FROM_STUDENT = {
    "student": 1,
    "native_traces": 1,
    "rejection_sampling": 1,
    "stream": 5,
    "retention": 3,
    "outcome_reward_model": 1,
    "reward_scores": 10,
    "adaptation_cost": 5,
    "drift": 1,
    "fine_tune": 10,
    "evaluate_checkpoint": 10,
    "evaluate_base": 1,
    "evaluate_base_greedy": 1,
    "report": 1,
    "paradox": 1,
    "manifest": 1,
    "all": 1,
}
EVERYTHING = {**UPSTREAM, **FROM_STUDENT}
# the base student's evaluations read the student and the benchmarks, not the native traces
FROM_NATIVE_TRACES = {
    k: v for k, v in FROM_STUDENT.items() if k not in ("student", "evaluate_base", "evaluate_base_greedy")
}
FROM_REJECTION = {k: v for k, v in FROM_NATIVE_TRACES.items() if k != "native_traces"}
REPORTS = {"report": 1, "paradox": 1, "manifest": 1, "all": 1}
EVALUATIONS = {"evaluate_base": 1, "evaluate_base_greedy": 1, "evaluate_checkpoint": 10}

# (what is edited, file, old text, new text) -> the jobs it replans
CODE_EDITS = {
    "the manifest code": (
        "scripts/infrastructure/manifest.py",
        "def seeds(",
        "SEEDS_EDITED = 1\n\n\ndef seeds(",
        {"manifest": 1, "all": 1},
    ),
    "a figure": (
        "scripts/analysis/figures.py",
        "ax.grid(alpha=0.3)",
        "ax.grid(alpha=0.4)",
        {"report": 1, "manifest": 1, "all": 1},
    ),
    "the built-in reward backend": (
        "scripts/organism/reward.py",
        "(precision + final) / 2",
        "(final + precision) / 2",
        {"reward_scores": 5, **REPORTS},
    ),
    # the outcome reward model scores through it; the process reward does not
    "a learned reward backend": (
        "scripts/backends/rewards/learned.py",
        '"batch_size": 8',
        '"batch_size": 4',
        {"reward_scores": 5, **REPORTS},
    ),
    # the built-in student is pretrained through the same trainer: everything from it reruns
    "the training module": (
        "scripts/training/trainer.py",
        "logging_steps=1,",
        "logging_steps=1, logging_first_step=True,",
        FROM_STUDENT,
    ),
    "the fine-tuning stage": (
        "scripts/stages/fine_tune.py",
        '"world_size": world,',
        '"world_size": world, "x": 1,',
        {"fine_tune": 10, "evaluate_checkpoint": 10, **REPORTS},
    ),
    "the transformers generation backend": (
        "scripts/backends/generation/transformers_backend.py",
        'desc="token NLL"',
        'desc="token NLLs"',
        {**FROM_NATIVE_TRACES, "evaluate_base": 1, "evaluate_base_greedy": 1},  # sampling, scoring, evaluation
    ),
    "the vLLM backend (not used)": ("scripts/backends/generation/vllm_backend.py", '"samples.jsonl"', '"s.jsonl"', {}),
    "the vLLM engine (not used)": ("scripts/backends/generation/vllm_engine.py", '"1"', '"2"', {}),
    "the OpenAI client (not used)": ("scripts/backends/oracles/openai_client.py", "120.0", "60.0", {}),
    "the shared statistics": (
        "scripts/analysis/statistics.py",
        "1.96 *",
        "1.959964 *",
        {**EVALUATIONS, "retention": 3, "reward_scores": 10, "drift": 1, **REPORTS},
    ),
}
CONFIG_EDITS = {
    "problems.pool.n": (
        "problems: {pool: {n: 40}}",
        {
            "problem_pool": 1,
            **FROM_NATIVE_TRACES,
        },
    ),
    # the pool is decontaminated against every benchmark before sampling: a benchmark edit
    # remakes the pool, and so everything sampled from it
    "problems.benchmarks.two_step.n": (
        "problems: {benchmarks: {two_step: {n: 10}}}",
        {"benchmark_problems": 1, "problem_pool": 1, **FROM_NATIVE_TRACES, **EVALUATIONS},
    ),
    "problems.decontamination.threshold": (
        "problems: {decontamination: {threshold: 0.9}}",
        {"problem_pool": 1, **FROM_NATIVE_TRACES},
    ),
    "students.tiny.builtin.slip_rate": ("students: {tiny: {builtin: {slip_rate: 0.1}}}", FROM_STUDENT),
    "native_traces.temperature": ("native_traces: {temperature: 0.9}", FROM_NATIVE_TRACES),
    "rejection_sampling.timeout_s": ("rejection_sampling: {timeout_s: 4}", FROM_REJECTION),
    "streams.oracle_refined.task": (
        "streams: {oracle_refined: {task: synthesize}}",
        {
            "stream": 1,
            "retention": 1,
            "reward_scores": 2,
            "adaptation_cost": 1,
            "drift": 1,
            "fine_tune": 2,
            "evaluate_checkpoint": 2,
            **REPORTS,
        },
    ),
    "rewards.process.batch_size": ("rewards: {process: {batch_size: 4}}", {"reward_scores": 5, **REPORTS}),
    "adaptation_cost.low_prob_threshold": (
        "adaptation_cost: {low_prob_threshold: 0.2}",
        {"adaptation_cost": 5, "drift": 1, **REPORTS},
    ),
    "adaptation_cost.drift.top_tokens": (
        "adaptation_cost: {drift: {top_tokens: 5}}",
        {"drift": 1, "manifest": 1, "all": 1},
    ),
    "training.hparams.warmup_ratio": (
        "training: {hparams: {warmup_ratio: 0.2}}",
        {"fine_tune": 10, "evaluate_checkpoint": 10, **REPORTS},
    ),
    # the greedy evaluation samples once whatever k is: it does not rerun
    "evaluation.k": ("evaluation: {k: 3}", {"evaluate_base": 1, "evaluate_checkpoint": 10, **REPORTS}),
    "report.bootstrap_rounds": ("report: {bootstrap_rounds: 500}", {"paradox": 1, "manifest": 1, "all": 1}),
}


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    """A copy of the workflow (mtimes kept) whose files a test edits and restores."""
    copy = tmp_path_factory.mktemp("workflow") / "wf"
    skip = shutil.ignore_patterns(".venv*", "results", "sweep", ".snakemake", ".git", "__pycache__", "*.egg-info")
    shutil.copytree(REPO, copy, ignore=skip)
    return copy


def dry_run(copy, workdir, edit=None):
    """The jobs a dry run of the workflow in ``copy`` plans in ``workdir`` (``edit``: a YAML layer)."""
    layer = []
    if edit:
        layer = [str(Path(workdir).parent / f"{Path(workdir).name}-edit.yaml")]
        Path(layer[0]).write_text(edit)
    cmd = [
        *SNAKEMAKE,
        "--snakefile",
        str(copy / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "-n",
        "--configfile",
        *CONFIGS,
        *layer,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return planned_jobs(out)


def edited(copy, changes: dict[str, str]):
    """Apply ``{file: new text}`` to the copy; returns a function that restores the files, their
    bytes and their mtimes."""
    saved = {}
    for rel, text in changes.items():
        path = copy / rel
        saved[path] = (path.read_bytes(), path.stat().st_mtime_ns)
        path.write_text(text)

    def restore():
        for path, (data, mtime) in saved.items():
            path.write_bytes(data)
            os.utime(path, ns=(mtime, mtime))

    return restore


def test_a_comment_docstring_or_reformat_of_every_project_module_replans_no_job(finished_run, workflow_copy):
    changes = {}
    for path in sorted((workflow_copy / "scripts").rglob("*.py")):
        text = path.read_text()
        text = "# a comment a newcomer added\n" + text.replace("\n\n\n", "\n\n\n\n") + "\n# and one at the end\n"
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree, clean=False)
        if doc:
            text = text.replace(doc, doc + " (reworded)", 1)
        changes[str(path.relative_to(workflow_copy))] = text
    restore = edited(workflow_copy, changes)
    try:
        assert dry_run(workflow_copy, finished_run) == {}
    finally:
        restore()


@pytest.mark.parametrize("what", list(CODE_EDITS))
def test_a_behavioural_edit_replans_exactly_the_jobs_whose_stage_uses_it(finished_run, workflow_copy, what):
    rel, old, new, expected = CODE_EDITS[what]
    text = (workflow_copy / rel).read_text()
    assert text.count(old) >= 1, f"{rel} no longer holds {old!r}: update the edit"
    restore = edited(workflow_copy, {rel: text.replace(old, new, 1)})
    try:
        assert dry_run(workflow_copy, finished_run) == expected
    finally:
        restore()


@pytest.mark.parametrize("key", list(CONFIG_EDITS))
def test_a_config_key_replans_its_stage_and_what_depends_on_it(finished_run, workflow_copy, key):
    edit, expected = CONFIG_EDITS[key]
    assert dry_run(workflow_copy, finished_run, edit) == expected


@pytest.mark.parametrize(
    "edit, key",
    [
        ("training: {lr: [fast]}", "lr"),
        ("native_traces: {temperature: -1}", "temperature"),
        ("evaluation: {k: 16, samples: 3}", "samples"),
        ("streams: {oracle_refined: {oracle: gpt}}", "streams.oracle_refined.oracle"),
    ],
)
def test_a_bad_config_fails_before_any_job_with_the_key_named(tmp_path, edit, key):
    out = snakemake(tmp_path / "work", edit=edit, check=False)
    assert out.returncode != 0
    assert key in out.stdout + out.stderr
    assert not (tmp_path / "work" / "results").exists()


def artifact_hashes(workdir, skip=("logs/", "frozen/")) -> dict[str, str]:
    from scripts.infrastructure.records import sha256

    root = Path(workdir) / "results"
    return {
        f.relative_to(root).as_posix(): sha256(f)
        for f in sorted(root.rglob("*"))
        if f.is_file() and not f.relative_to(root).as_posix().startswith(skip)
    }


def test_the_manifest_pins_config_code_models_data_and_every_artifact(finished_run):
    import json

    manifest = json.loads((finished_run / "results/report/manifest.json").read_text())
    assert len(manifest["config_sha256"]) == 64 and manifest["config"]["primary_reward"] == "process"
    assert set(manifest["git"]) == {"commit", "dirty"}
    assert manifest["environment"]["packages"]["torch"].startswith("2.13.0")
    assert {"training.yaml", "data.yaml", "report.yaml"} <= set(manifest["environment"]["declared"])
    student = manifest["students"][0]
    assert student["model"] == "builtin" and len(student["weights_sha256"]["model.safetensors"]) == 64
    assert set(manifest["problem_sets"]) == {"pool", "two_step", "three_step", "four_step"}
    assert all(len(p["rows_sha256"]) == 64 for p in manifest["problem_sets"].values())
    assert manifest["seeds"]["training.seeds"] == [0]
    hashes = artifact_hashes(finished_run, skip=("logs/", "frozen/", "report/manifest.json"))
    assert manifest["artifacts"] == hashes


@pytest.mark.from_scratch
def test_two_runs_from_scratch_sample_byte_identical_upstream_artifacts(finished_run, tmp_path_factory):
    # From scratch up to what `freeze` archives (student, native traces, streams, scores); the
    # replay test below shows the rest (training, evaluation, report) is deterministic too.
    second = tmp_path_factory.mktemp("ci_run_again")
    snakemake(second, "freeze")
    first, again = artifact_hashes(finished_run), artifact_hashes(second)
    assert (
        {
            "native_traces/tiny.jsonl",
            "student/tiny/model/model.safetensors",
            "streams/tiny/oracle_refined.jsonl",
            "scores/tiny/slm_rft/process.jsonl",
        }
        <= again.keys()
        <= first.keys()
    )
    assert [k for k in again if first[k] != again[k]] == []


@pytest.fixture(scope="module")
def frozen_archive(finished_run):
    snakemake(finished_run, "freeze")
    return finished_run / "results" / "frozen"


def test_a_replay_from_the_frozen_archive_reproduces_everything_downstream(
    finished_run, frozen_archive, tmp_path_factory
):
    # Everything downstream of one oracle stream (both objectives), to keep the test short;
    # the rest of the DAG replays through the same rules.
    replay = tmp_path_factory.mktemp("replay")
    run = "tiny/oracle_refined/{}/lr0.0003_bs8_ep1_seed0"
    targets = ["results/adaptation_cost/tiny/oracle_refined.json", "results/retention/tiny/oracle_refined.json"]
    targets += [f"results/evaluation/{run.format(o)}/scores.json" for o in ("sft", "dft")]
    snakemake(replay, *targets, edit=f"archive: {{replay: {frozen_archive}}}")
    log = (replay / "results/logs/native_traces/tiny.log").read_text()
    assert "restored 1 files from the frozen archive" in log  # no sampling happened
    assert "restored" in (replay / "results/logs/streams/tiny/oracle_refined.log").read_text()
    assert "restored" in (replay / "results/logs/retention/tiny/oracle_refined.log").read_text()  # no judging
    original, replayed = artifact_hashes(finished_run), artifact_hashes(replay)
    assert {
        f"training/{run.format('dft')}/checkpoint/model.safetensors",
        "rejection_sampling/tiny/solvable.jsonl",
        f"evaluation/{run.format('sft')}/samples.jsonl",
        "adaptation_cost/tiny/oracle_refined.json",
    } <= replayed.keys()
    assert replayed.keys() <= original.keys()
    assert [k for k in replayed if original[k] != replayed[k]] == []


def test_a_tampered_archive_is_refused_naming_the_artifact(frozen_archive, tmp_path):
    damaged = tmp_path / "frozen"
    shutil.copytree(frozen_archive, damaged)
    traces = damaged / "native_traces" / "tiny.jsonl"
    traces.write_bytes(traces.read_bytes()[:-100])  # truncated
    out = snakemake(
        tmp_path / "work", "results/native_traces/tiny.jsonl", edit=f"archive: {{replay: {damaged}}}", check=False
    )
    assert out.returncode != 0
    assert "native_traces/tiny.jsonl is corrupted" in out.stdout + out.stderr
    assert not (tmp_path / "work/results/native_traces/tiny.jsonl").exists()


def test_an_oracle_prompt_edit_replans_the_streams_that_send_it_and_a_preamble_edit_replans_nothing(
    finished_run, tmp_path
):
    # The finished run, its oracle_refined stream marked as made by an API oracle (`--touch`
    # records the params without running anything: no request is sent in this test).
    work = tmp_path / "run"
    shutil.copytree(finished_run, work, symlinks=True, ignore=shutil.ignore_patterns("frozen"))
    prompts = work / "prompts"
    shutil.copytree(REPO / "prompts", prompts)
    api = {
        "backend": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "model": "m",
        "api_key_env": "QUP_TEST_KEY",
        "prompts": {t: str(prompts / f"{t}.v1.md") for t in ("refine", "synthesize", "style_align", "judge")},
    }
    edit = f"oracles: {{api: {json.dumps(api)}}}\nstreams: {{oracle_refined: {{oracle: api}}}}\n"
    env = {**os.environ, "QUP_TEST_KEY": "not-a-real-key"}
    os.environ["QUP_TEST_KEY"] = "not-a-real-key"  # dry_run's subprocess inherits it
    try:
        layer = tmp_path / "api.yaml"
        layer.write_text(edit)
        touch = [
            *SNAKEMAKE,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(work),
            "--cores",
            "1",
            "--touch",
            "--configfile",
            *CONFIGS,
            str(layer),
        ]
        assert subprocess.run(touch, capture_output=True, text=True, env=env, timeout=300).returncode == 0
        assert dry_run(REPO, work, edit) == {}
        refine = prompts / "refine.v1.md"
        original = refine.read_text()
        preamble, _, messages = original.partition("<!-- role:")
        refine.write_text(preamble + "A note for whoever edits this prompt next.\n\n<!-- role:" + messages)
        assert dry_run(REPO, work, edit) == {}  # the preamble is not sent
        refine.write_text(original.replace("<!-- role: user -->", "<!-- role: user -->\nPlease be brief.", 1))
        assert dry_run(REPO, work, edit) == {
            "stream": 1,
            "retention": 1,
            "reward_scores": 2,
            "adaptation_cost": 1,
            "drift": 1,
            "fine_tune": 2,
            "evaluate_checkpoint": 2,
            **REPORTS,
        }
        refine.write_text(original)
        judge = prompts / "judge.v1.md"
        judge.write_text(judge.read_text().replace("<!-- role: user -->", "<!-- role: user -->\nBe strict.", 1))
        assert dry_run(REPO, work, edit) == {"retention": 1, **REPORTS}  # the judge of that stream only
    finally:
        del os.environ["QUP_TEST_KEY"]
