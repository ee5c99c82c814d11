"""Faults during a run, on copies of the session's CI-sized run (``ci_run``) or one stage:

- the Snakemake driver killed (SIGKILL) mid-job: a stale lock that ``--unlock`` clears, the
  outputs of the interrupted job not trusted, and ``--rerun-incomplete`` finishing with the
  outputs of the run that was never interrupted; a second ``snakemake`` on a directory another
  one is running in stops with Snakemake's lock message;
- a stream JSONL truncated or edited by hand after its stage wrote it: refused by the stage that
  would train on it (``records.read_jsonl`` checks the sha256 its writer left beside it);
- a full disk, or a read-only ``results/``, when a stage writes: the stage stops naming the file
  and the cause, and nothing is left under the artifact's name, nor a ``.partial`` (a real tmpfs
  in a mount namespace of its own: filled up, or remounted read-only).
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config, validate

from scripts.infrastructure.archive import freeze, restore
from scripts.infrastructure.records import read_jsonl, sha256, write_jsonl
from scripts.infrastructure.stage_log import StageError

from conftest import CONFIGS, REPO, SNAKEMAKE, snakemake

LOCKED = "Directory cannot be locked"
# The untrained student's sampled evaluation: one job, deterministic, a few seconds of work.
EVALUATION = ["results/evaluation/tiny/base/scores.json", "results/evaluation/tiny/base/samples.jsonl"]
EVALUATION_LOG = "results/logs/evaluation/tiny/base.log"
RUN = "tiny/slm_rft/sft/lr0.0003_bs8_ep1_seed0"


def copy_run(ci_run, dest: Path) -> Path:
    """A copy of the finished run that Snakemake sees as the same run (mtimes kept)."""
    shutil.copytree(ci_run, dest, symlinks=True)
    return dest


def wait_for(predicate, proc, timeout_s: float = 600, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc is None or proc.poll() is None, f"snakemake exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(0.1)


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies, reaped or not, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            state, _, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
            if int(pgrp) == pgid and state != "Z":
                return True
    return False


# --- a killed driver, a second driver -----------------------------------------------------------


@pytest.fixture(scope="module")
def killed(ci_run, tmp_path_factory):
    """Rerun the base evaluation in a copy of the CI run. Once its job runs: freeze driver and job
    (SIGSTOP; the driver holds its lock) and start a second snakemake on the same directory; then
    SIGKILL the driver alone, mid-job (its job, orphaned, runs on and writes its outputs, which
    Snakemake marked incomplete when it started the job); then rerun: refused as incomplete; with
    --rerun-incomplete, locked (the dead driver's lock stays); --unlock, --rerun-incomplete."""
    work = copy_run(ci_run, tmp_path_factory.mktemp("killed") / "work")
    for rel in [*EVALUATION, EVALUATION[1] + ".sha256", EVALUATION_LOG]:  # as if never run
        (work / rel).unlink()
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--configfile", *CONFIGS]
    driver = subprocess.Popen(
        [*cmd, "--cores", "2", EVALUATION[0]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the driver and the job it runs
    )
    out = {}
    try:
        # the stage opens its log once its imports are done: the job is running
        wait_for(lambda: (work / EVALUATION_LOG).exists(), driver, what="the evaluation job")
        os.killpg(driver.pid, signal.SIGSTOP)
        out["mid_job"] = [rel for rel in EVALUATION if (work / rel).exists()]
        out["second"] = snakemake(work, EVALUATION[0], check=False)
        driver.kill()  # SIGKILL, the driver only
        driver.wait(60)
        os.killpg(driver.pid, signal.SIGCONT)
        wait_for(lambda: not group_alive(driver.pid), None, what="the orphaned job's end")
        out["left"] = sorted(p.name for p in (work / "results/evaluation/tiny/base").iterdir())
        out["incomplete"] = list((work / ".snakemake" / "incomplete").iterdir())
        out["untrusted"] = snakemake(work, EVALUATION[0], check=False)
        out["stale"] = snakemake(work, EVALUATION[0], "--rerun-incomplete", check=False)
        snakemake(work, "--unlock")
        out["rerun"] = snakemake(work, EVALUATION[0], "--rerun-incomplete", check=False)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(60)
    return work, out


@pytest.mark.e2e
def test_a_second_snakemake_on_a_directory_in_use_stops_with_snakemakes_lock_message(killed):
    work, out = killed
    second = out["second"]
    assert second.returncode != 0 and LOCKED in second.stdout + second.stderr
    assert "--unlock" in second.stdout + second.stderr  # it says how to clear a lock left by a kill


@pytest.mark.e2e
def test_a_driver_killed_mid_job_then_rerun_incomplete_finishes_as_an_uninterrupted_run(killed, ci_run):
    work, out = killed
    assert out["mid_job"] == []  # killed while the job ran, before it wrote anything
    # the orphaned job finished its (atomic) writes, but Snakemake recorded the job as unfinished
    assert out["left"] == ["samples.jsonl", "samples.jsonl.sha256", "scores.json"] and out["incomplete"]
    untrusted = out["untrusted"]  # Snakemake checks for incomplete outputs before it locks
    assert untrusted.returncode != 0 and "--rerun-incomplete" in untrusted.stdout + untrusted.stderr
    stale = out["stale"]
    assert stale.returncode != 0 and LOCKED in stale.stdout + stale.stderr  # until --unlock
    rerun = out["rerun"]
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-4000:]
    assert "evaluate_base" in rerun.stdout + rerun.stderr  # redone, not trusted
    for rel in [*EVALUATION, EVALUATION[1] + ".sha256"]:
        assert sha256(work / rel) == sha256(ci_run / rel), rel
    again = snakemake(work, EVALUATION[0], "-n")
    assert "Nothing to be done" in again.stdout + again.stderr  # finished: nothing left incomplete


# --- a stream changed after its stage wrote it ----------------------------------------------------


def test_a_changed_record_file_is_refused_and_its_checksum_travels_through_the_archive(tmp_path):
    path = tmp_path / "results" / "streams" / "s.jsonl"
    rows = [{"id": str(i), "trace": f"{i} + 1 = {i + 1}"} for i in range(5)]
    write_jsonl(path, rows)
    assert read_jsonl(path) == rows
    data = path.read_bytes()
    for damaged in (data[: data.rindex(b"\n", 0, -1) + 1], data.replace(b"1 + 1 = 2", b"1 + 1 = 3")):
        path.write_bytes(damaged)  # the last row cut off at a line end (valid JSONL), or one value edited
        with pytest.raises(StageError, match=r"s\.jsonl was changed after its stage wrote it"):
            read_jsonl(path)
    Path(f"{path}.sha256").unlink()  # used on purpose: its checksum deleted, as the message says
    assert len(read_jsonl(path)) == 5
    # a replayed archive restores the file with its checksum beside it
    write_jsonl(path, rows)
    freeze([str(path)], str(tmp_path / "results"), str(tmp_path / "frozen"), {})
    restore(tmp_path / "frozen", "streams/s.jsonl", tmp_path / "restored" / "s.jsonl")
    assert read_jsonl(tmp_path / "restored" / "s.jsonl") == rows
    assert (tmp_path / "restored" / "s.jsonl.sha256").read_text() == Path(f"{path}.sha256").read_text()


@pytest.mark.e2e
@pytest.mark.parametrize("damage", ["truncated", "edited"])
def test_a_truncated_or_edited_stream_is_refused_not_trained_on(ci_run, tmp_path, damage):
    work = copy_run(ci_run, tmp_path / "work")
    stream = work / "results" / "streams" / "tiny" / "slm_rft.jsonl"
    lines = stream.read_text().splitlines(keepends=True)
    if damage == "truncated":  # cut at a line end: still valid JSONL, one trace fewer
        stream.write_text("".join(lines[:-1]))
    else:  # one trace edited by hand
        row = json.loads(lines[0])
        lines[0] = json.dumps({**row, "trace": row["trace"] + "\nChecked by hand."}) + "\n"
        stream.write_text("".join(lines))
    # the stream is now newer than the runs trained on it, so Snakemake reruns them: they must refuse
    out = snakemake(work, f"results/training/{RUN}/train.json", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "results/streams/tiny/slm_rft.jsonl was changed after its stage wrote it" in text
    assert not (work / "results" / "training" / RUN / "train.json").exists()


# --- a full disk, a read-only results/ ----------------------------------------------------------

RUNNER = """
import json, runpy, sys
from types import SimpleNamespace

class Params(dict):
    __getattr__ = dict.__getitem__

spec, out, log = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
job = SimpleNamespace(
    input=SimpleNamespace(), output=SimpleNamespace(problems=out), log=[log], threads=1,
    wildcards={"benchmark": "bench"}, params=Params(spec=spec, decontamination=None, benchmarks=None, replay=None),
)
runpy.run_path("scripts/stages/problems.py", init_globals={"snakemake": job}, run_name="__main__")
"""
# In a mount namespace of its own (the test's), a tmpfs on $1: full (a few KB, then filled) or
# read-only; the stage writes its benchmark there; then every file left on that disk is listed.
FAULTS = {
    "full disk": 'mount -t tmpfs -o size=16k tmpfs "$1" && mkdir -p "$1/results" '
    '&& (dd if=/dev/zero of="$1/filler" bs=1k count=64 2>/dev/null; true)',
    "read-only results": 'mount -t tmpfs -o size=1m tmpfs "$1" && mkdir -p "$1/results/problems" '
    '&& mount -o remount,ro "$1"',
}
CAUSES = {"full disk": "No space left on device (the disk is full)", "read-only results": "Read-only file system"}


@pytest.fixture(scope="module")
def mount_namespaces(tmp_path_factory):
    probe = tmp_path_factory.mktemp("probe")
    ok = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs tmpfs {probe}"], capture_output=True)
    if ok.returncode != 0:
        pytest.skip(f"needs a mount namespace with tmpfs (root): {ok.stderr.decode().strip()}")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_full_disk_or_read_only_results_stops_the_stage_naming_the_file_and_leaves_nothing(
    mount_namespaces, tmp_path, fault
):
    config = {}
    for path in CONFIGS:
        update_config(config, yaml.safe_load(Path(path).read_text()))
    validate(config, str(REPO / "schemas" / "config.schema.yaml"))
    spec = {**config["problems"]["benchmarks"]["two_step"], "n": 200}  # ~100 KB of JSONL
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "results" / "problems" / "bench.jsonl"
    log = tmp_path / "bench.log"  # on a healthy disk, so the stage can say what happened
    script = (
        f'{FAULTS[fault]} && {{ "$2" -c "$3" "$4" "$5" "$6"; echo "exit=$?"; '
        'find "$1" -type f ! -name filler | sed "s/^/left: /"; }'
    )
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            script,
            "sh",
            str(disk),
            sys.executable,
            RUNNER,
            json.dumps(spec),
            str(out),
            str(log),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    text = done.stdout + done.stderr
    assert "exit=1" in done.stdout, text
    assert f"cannot write {out}: {CAUSES[fault]}" in text, text  # on the console, naming file and cause
    assert f"cannot write {out}" in log.read_text()
    assert "left: " not in done.stdout, text  # neither the artifact nor a .partial of it
