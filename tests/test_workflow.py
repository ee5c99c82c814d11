"""End to end: the real snakemake CLI on the CI-sized config, in a scratch working directory."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CONFIGS = [str(REPO / "config.yaml"), str(REPO / "tests" / "configs" / "ci.yaml")]

pytestmark = pytest.mark.e2e


def snakemake(workdir, *args, check=True, edit=None):
    """Run snakemake on the CI-sized config; ``edit`` is YAML layered on top, as a user would."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    configs = list(CONFIGS)
    if edit:
        layer = Path(workdir).parent / f"{Path(workdir).name}-edit.yaml"
        layer.write_text(edit)
        configs.append(str(layer))
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", *configs, "--cores", "2", *args]
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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ci_run")
    snakemake(workdir)
    return workdir


def test_full_run_reports_every_stream_and_the_base_student(finished_run):
    report = finished_run / "results" / "report"
    table = pl.read_csv(report / "streams.csv")
    streams = {"slm_rft", "oracle_refined", "oracle_synthesized", "reference", "style_aligned"}
    assert set(table["stream"]) == streams | {"base"}
    required = ["student", "stream", "objective", "lr", "batch_size", "seed", "n_examples", "reward_mean",
                "ppl", "ppl_q1", "ppl_q2", "ppl_q3", "ppl_q4", "avg_at_k", "avg_at_k_two_step",
                "avg_at_k_three_step", "avg_at_k_four_step"]
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
    for name in ("ppl_vs_utility", "reward_vs_utility", "segmented_ppl", "training_curves", "retention",
                 "paradox_budget", "q1_loss_attribution", "token_frequency_shift", "learner_compatibility"):
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


def test_changing_one_oracle_stream_reruns_only_that_stream_and_its_descendants(finished_run):
    out = snakemake(finished_run, "-n", edit="streams: {oracle_refined: {task: synthesize}}")
    assert planned_jobs(out) == {"stream": 1, "retention": 1, "reward_scores": 1, "adaptation_cost": 1, "drift": 1,
                                 "fine_tune": 2, "evaluate_checkpoint": 2, "report": 1, "paradox": 1, "manifest": 1,
                                 "all": 1}


def test_changing_a_training_hyperparameter_reruns_training_not_sampling(finished_run):
    out = snakemake(finished_run, "-n", edit="training: {hparams: {warmup_ratio: 0.2}}")
    jobs = planned_jobs(out)
    assert jobs == {"fine_tune": 10, "evaluate_checkpoint": 10, "report": 1, "paradox": 1, "manifest": 1, "all": 1}


def test_editing_an_imported_helper_reruns_the_stages_that_import_it(finished_run, tmp_path):
    # A copy of the workflow whose reward module differs by one comment line.
    copy = tmp_path / "wf"
    skip = shutil.ignore_patterns(".venv*", "results", "sweep", ".snakemake", ".git", "*.pyc")
    shutil.copytree(REPO, copy, ignore=skip)
    (copy / "scripts" / "reward.py").write_text((copy / "scripts" / "reward.py").read_text() + "\n# edited\n")
    out = subprocess.run([*SNAKEMAKE, "--snakefile", str(copy / "Snakefile"), "--directory", str(finished_run),
                          "--configfile", *CONFIGS, "--cores", "2", "-n"], capture_output=True, text=True)
    assert planned_jobs(out) == {"reward_scores": 5, "report": 1, "paradox": 1, "manifest": 1, "all": 1}


@pytest.mark.parametrize("edit, key", [
    ("training: {lr: [fast]}", "lr"),
    ("native_traces: {temperature: -1}", "temperature"),
    ("evaluation: {k: 16, samples: 3}", "samples"),
    ("streams: {oracle_refined: {oracle: gpt}}", "streams.oracle_refined.oracle"),
])
def test_a_bad_config_fails_before_any_job_with_the_key_named(tmp_path, edit, key):
    out = snakemake(tmp_path / "work", edit=edit, check=False)
    assert out.returncode != 0
    assert key in out.stdout + out.stderr
    assert not (tmp_path / "work" / "results").exists()


def test_lint_and_format_are_clean():
    lint = subprocess.run([*SNAKEMAKE, "--lint", "--snakefile", str(REPO / "Snakefile")], cwd=REPO,
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run([str(Path(sys.executable).parent / "snakefmt"), "--check", "Snakefile", "rules"], cwd=REPO,
                         capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def artifact_hashes(workdir, skip=("logs/", "frozen/")) -> dict[str, str]:
    from scripts.infrastructure.records import sha256

    root = Path(workdir) / "results"
    return {f.relative_to(root).as_posix(): sha256(f) for f in sorted(root.rglob("*"))
            if f.is_file() and not f.relative_to(root).as_posix().startswith(skip)}


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


def test_two_runs_from_scratch_sample_byte_identical_upstream_artifacts(finished_run, tmp_path_factory):
    # From scratch up to what `freeze` archives (student, native traces, streams, scores); the
    # replay test below shows the rest (training, evaluation, report) is deterministic too.
    second = tmp_path_factory.mktemp("ci_run_again")
    snakemake(second, "freeze")
    first, again = artifact_hashes(finished_run), artifact_hashes(second)
    assert {"native_traces/tiny.jsonl", "student/tiny/model/model.safetensors",
            "streams/tiny/oracle_refined.jsonl", "scores/tiny/slm_rft/process.jsonl"} <= again.keys() <= first.keys()
    assert [k for k in again if first[k] != again[k]] == []


@pytest.fixture(scope="module")
def frozen_archive(finished_run):
    snakemake(finished_run, "freeze")
    return finished_run / "results" / "frozen"


def test_a_replay_from_the_frozen_archive_reproduces_everything_downstream(finished_run, frozen_archive,
                                                                          tmp_path_factory):
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
    assert {f"training/{run.format('dft')}/checkpoint/model.safetensors", "rejection_sampling/tiny/solvable.jsonl",
            f"evaluation/{run.format('sft')}/samples.jsonl", "adaptation_cost/tiny/oracle_refined.json"} <= replayed.keys()
    assert replayed.keys() <= original.keys()
    assert [k for k in replayed if original[k] != replayed[k]] == []


def test_a_tampered_archive_is_refused_naming_the_artifact(frozen_archive, tmp_path):
    damaged = tmp_path / "frozen"
    shutil.copytree(frozen_archive, damaged)
    traces = damaged / "native_traces" / "tiny.jsonl"
    traces.write_bytes(traces.read_bytes()[:-100])  # truncated
    out = snakemake(tmp_path / "work", "results/native_traces/tiny.jsonl",
                    edit=f"archive: {{replay: {damaged}}}", check=False)
    assert out.returncode != 0
    assert "native_traces/tiny.jsonl is corrupted" in out.stdout + out.stderr
    assert not (tmp_path / "work/results/native_traces/tiny.jsonl").exists()
