"""The SLURM profile: how Snakemake finds it, what each job asks for, and a real run.

The real run brings up a single-node SLURM on this machine (tests/slurm/start_slurm.sh: root,
Debian-like, a fake GPU), runs the CI-sized pipeline through a profile derived from
profiles/slurm, and asks SLURM itself (scontrol) which jobs asked for a GPU."""

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
START_SLURM = REPO / "tests" / "slurm" / "start_slurm.sh"
CI = [REPO / "config.yaml", REPO / "tests" / "configs" / "ci.yaml"]
GPU = REPO / "tests" / "configs" / "gpu.yaml"
LARGE = REPO / "tests" / "configs" / "large.yaml"

# The rules of the GPU stages (tests/configs/gpu.yaml), by the `resources.<stage>` they use;
# every other rule is a CPU rule of the `light` stage.
STAGE = {
    "student": "student",
    "native_traces": "native_traces",
    "adaptation_cost": "adaptation_cost",
    "fine_tune": "training",
    "reward_scores": "reward",
    "outcome_reward_model": "reward",
    "evaluate_base": "evaluation",
    "evaluate_base_greedy": "evaluation",
    "evaluate_checkpoint": "evaluation",
}
GPU_RULES = set(STAGE)
GROUPS = {"evaluation": {"evaluate_base", "evaluate_base_greedy", "evaluate_checkpoint"}}  # profiles/slurm `groups`
JOB_PREFIX = "qup_test"

pytestmark = pytest.mark.e2e


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def derived_slurm_profile(dest: Path) -> Path:
    """profiles/slurm as shipped, with what this test machine needs on top: no conda (not
    installable here, and even a dry run calls `conda info`; the venv runs every job), squeue
    for status (no accounting database), no account, and quick polling."""
    dest.mkdir(parents=True, exist_ok=True)
    profile = load(REPO / "profiles" / "slurm" / "profile.yaml")
    profile.pop("software-deployment-method")
    profile.update(
        {
            "slurm-status-command": "squeue",
            "slurm-no-account": True,  # (ignored by plugin 2.8.0, which then guesses and finds none)
            "slurm-init-seconds-before-status-checks": 2,
            "seconds-between-status-checks": 2,
            "slurm-jobname-prefix": JOB_PREFIX,
            "slurm-keep-successful-logs": True,
            "latency-wait": 5,
            "retries": 0,  # a failure here is a bug to see at once, not to retry
        }
    )
    (dest / "profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    shutil.copy(REPO / "profiles" / "slurm" / "partitions.yaml", dest / "partitions.yaml")
    return dest


def snakemake(workdir: Path, profile: Path, configs, *args, timeout=900):
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        *SNAKEMAKE,
        "--profile",
        str(profile),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        *map(str, configs),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def localrules() -> set[str]:
    """The rules the rules files declare `localrules` (they run where Snakemake runs)."""
    found = set()
    for smk in (REPO / "rules").glob("*.smk"):
        for block in re.findall(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", smk.read_text(), re.M):
            found |= set(re.findall(r"\w+", block))
    return found


def jobs_in_dry_run(text: str) -> list[tuple[str, dict]]:
    """(rule, resources) of every job a dry run prints, group members included."""
    jobs = []
    for block in re.split(r"\n\s*rule (?=\w+:)", text)[1:]:
        rule = block.split(":", 1)[0]
        m = re.search(r"^\s*resources: (.*)$", block, re.M)
        resources = dict(kv.split("=", 1) for kv in m.group(1).split(", ")) if m else {}
        jobs.append((rule, resources))
    return jobs


# -- where Snakemake looks a profile up -------------------------------------------------------


def resolve_profile(name: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    return subprocess.run(
        [*SNAKEMAKE, "--profile", name, "--list-rules"], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_profile_by_path_resolves_from_the_repository_root(tmp_path):
    out = resolve_profile("profiles/slurm", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Using profiles profiles/slurm and workflow specific profile profiles/default" in out.stderr


def test_profile_by_bare_name_needs_installing_into_the_user_config_dir(tmp_path):
    # Snakemake 9.27 looks a bare name up in the cwd, ~/.config/snakemake, /etc/xdg/snakemake.
    out = resolve_profile("slurm", tmp_path)
    assert out.returncode != 0 and "no profile.yaml" in out.stderr
    shutil.copytree(REPO / "profiles" / "slurm", tmp_path / ".config" / "snakemake" / "slurm")
    out = resolve_profile("slurm", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Using profiles slurm and workflow specific profile profiles/default" in out.stderr


def test_the_workflow_profile_shares_no_key_with_the_other_profiles():
    # profiles/default is layered over --profile key by key: a shared key would silently win.
    default = set(load(REPO / "profiles" / "default" / "profile.yaml"))
    for name in ("slurm", "workstation"):
        shared = default & set(load(REPO / "profiles" / name / "profile.yaml"))
        assert not shared, f"profiles/{name} sets {shared}, which profiles/default overrides"


def test_site_specifics_live_in_profiles_not_in_rules():
    rules = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    for word in ("slurm_partition", "slurm_account", "gpu_model", "partition"):
        assert word not in rules, word
    # a GPU count per node (a multi-node job's gres) is portable; a site's GRES names are not
    assert set(re.findall(r'"gres": f?"([^"]*)"', rules)) <= {"gpu:{spec['gpu']}"}


# -- what each job asks for ---------------------------------------------------------------------


def test_resources_grow_with_each_attempt():
    """rules/common.smk's stage_resources: GPUs as configured, memory and time times the attempt."""
    # common.smk is Snakemake, not Python: take the helper's own (Python) definition out of it.
    source = re.search(r"^def stage_resources\(.*?(?=^\S)", (REPO / "rules" / "common.smk").read_text(), re.M | re.S)
    namespace = {"config": {"resources": {"training": {"gpu": 2, "mem_mb": 16000, "runtime": 480}}}}
    exec(compile(ast.parse(source.group(0)), "common.smk", "exec"), namespace)
    resources = namespace["stage_resources"]("training")
    assert resources["gpu"] == 2
    assert [resources["mem_mb"](None, attempt) for attempt in (1, 2, 3)] == [16000, 32000, 48000]
    assert [resources["runtime"](None, attempt) for attempt in (1, 2)] == [480, 960]


SIZES = {
    "student": (1, 11000, 110),
    "native_traces": (1, 12000, 120),
    "adaptation_cost": (1, 13000, 130),
    "training": (2, 14000, 140),
    "evaluation": (1, 15000, 150),
    "reward": (1, 16000, 160),
    "light": (0, 1500, 15),
}


@pytest.fixture(scope="module")
def slurm_dry_run(tmp_path_factory):
    """(rule, resources) of every job of the embedded default, through the SLURM profile, with
    distinct gpu / mem_mb / runtime per stage in the config."""
    tmp = tmp_path_factory.mktemp("dry")
    layer = tmp / "sizes.yaml"
    layer.write_text(
        yaml.safe_dump(
            {
                "resources": {stage: {"gpu": g, "mem_mb": m, "runtime": r} for stage, (g, m, r) in SIZES.items()},
                # two training processes split the batch of 16 in micro-batches of 8
                "training": {"hparams": {"micro_batch_size": 8}},
            }
        )
    )
    out = snakemake(tmp / "work", derived_slurm_profile(tmp / "profile"), [REPO / "config.yaml", layer], "-n")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return {"jobs": jobs_in_dry_run(out.stdout + out.stderr), "text": out.stdout + out.stderr}


def test_dry_run_with_the_slurm_profile_resolves_each_gpu_rule_to_its_stages_resources(slurm_dry_run):
    jobs = slurm_dry_run["jobs"]
    assert GPU_RULES <= {rule for rule, _ in jobs}
    for rule, res in jobs:
        if rule in GPU_RULES:
            expected = SIZES[STAGE[rule]]
            assert (int(res["gpu"]), int(res["mem_mb"]), int(res["runtime"])) == expected, (rule, res)
            assert "gpu_model" not in res and "gres" not in res, rule
    assert "Group job evaluation" in slurm_dry_run["text"]


def test_dry_run_with_the_slurm_profile_gives_cpu_rules_no_gpu(slurm_dry_run):
    cpu = [(rule, res) for rule, res in slurm_dry_run["jobs"] if rule not in GPU_RULES]
    assert {"rejection_sampling", "stream", "report"} <= {rule for rule, _ in cpu}
    assert not [rule for rule, res in cpu if int(res.get("gpu", 0)) or "gres" in res]


def test_every_rule_takes_mem_mb_and_runtime_from_its_stage_in_the_config(slurm_dry_run):
    # a rule without its own resources would get the profile's default-resources instead
    wrong = {
        rule: (res.get("mem_mb"), res.get("runtime"))
        for rule, res in slurm_dry_run["jobs"]
        if rule != "all" and (int(res["mem_mb"]), int(res["runtime"])) != SIZES[STAGE.get(rule, "light")][1:]
    }
    assert not wrong, f"rules not sized by resources.<stage> in the config: {wrong}"


def test_dry_run_with_the_workstation_profile_runs_gpu_jobs_in_turn(tmp_path):
    profile = load(REPO / "profiles" / "workstation" / "profile.yaml")
    profile.pop("software-deployment-method")
    (tmp_path / "workstation").mkdir()
    (tmp_path / "workstation" / "profile.yaml").write_text(yaml.safe_dump(profile))
    out = snakemake(tmp_path / "work", tmp_path / "workstation", [REPO / "config.yaml", GPU], "-n")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    gpus = {rule: int(res.get("gpu", 0)) for rule, res in jobs_in_dry_run(out.stdout + out.stderr)}
    assert all(gpus[r] == 1 for r in GPU_RULES) and not any(n for r, n in gpus.items() if r not in GPU_RULES)


def test_a_large_grid_builds_its_dag_within_30_seconds(tmp_path):
    """4 students x 5 streams x 2 objectives x 2 lr x 2 batch sizes x 3 seeds, through the SLURM
    profile (evaluation groups included)."""
    start = time.monotonic()
    out = snakemake(
        tmp_path / "work",
        derived_slurm_profile(tmp_path / "profile"),
        [REPO / "config.yaml", LARGE, GPU],
        "-n",
        "--quiet",
        "rules",
    )
    seconds = time.monotonic() - start
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out.stdout + out.stderr, re.M))
    assert int(counts["fine_tune"]) == 4 * 5 * 2 * 2 * 2 * 3
    print(f"large grid: {counts.get('total')} jobs, dry run {seconds:.1f} s")
    assert seconds <= 30


# -- a real SLURM ------------------------------------------------------------------------------


def slurm_jobs() -> dict[str, dict]:
    """Every job SLURM still knows (running, or finished within MinJobAge), by job id."""
    out = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True, check=True)
    jobs = {}
    for line in out.stdout.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


def rule_of(job: dict) -> str:
    """The rule (or group) a SLURM job runs, from the plugin's comment: `rule_<rule>` or
    `rule_<rule>_wildcards_<values>`, and for a group `rule_<group>_<its rules>`."""
    name = job.get("Comment", "").removeprefix("rule_").split("_wildcards_")[0]
    return next((g for g in GROUPS if name == g or name.startswith(g + "_")), name)


def asks_for_gpu(job: dict) -> bool:
    return any("gpu" in job.get(k, "") for k in ("TresPerJob", "TresPerNode", "TresPerTask", "TRES"))


@pytest.fixture(scope="module")
def slurm():
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("a local SLURM needs root on Linux (tests/slurm/start_slurm.sh)")
    if not Path("/etc/debian_version").exists():
        pytest.skip("tests/slurm/start_slurm.sh installs SLURM with apt-get: Debian-like systems only")
    if Path("/etc/slurm/slurm.conf").exists() and "start_slurm.sh" not in Path("/etc/slurm/slurm.conf").read_text():
        pytest.skip("this machine has its own /etc/slurm/slurm.conf; the test will not replace it")
    was_up = subprocess.run([str(START_SLURM), "status"], capture_output=True).returncode == 0
    up = subprocess.run([str(START_SLURM), "start"], capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        pytest.fail(f"could not start SLURM:\n{up.stdout}\n{up.stderr}")
    yield
    if not was_up:
        subprocess.run([str(START_SLURM), "stop"], capture_output=True, timeout=60)


def run_to_the_end(cmd: list[str], timeout: int) -> tuple[int, str]:
    """Run Snakemake; past the timeout, interrupt it as a user would (Ctrl-C: it cancels its
    SLURM jobs) rather than kill it and leave them queued."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    try:
        return proc.communicate(timeout=timeout)[0], False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out = proc.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
        return out, True


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """The CI-sized pipeline (SFT only), GPU stages asking for one GPU, through the SLURM profile."""
    tmp = tmp_path_factory.mktemp("slurm")
    # Every SLURM job killed after 10 min, whatever happens. SFT only: every rule still reaches
    # SLURM (DFT adds jobs of the same rules, ~70 s here, where 2 CPUs run 2 jobs at a time).
    bounded = tmp / "bounded.yaml"
    limits = {"resources": {s: {"runtime": 10, "mem_mb": 2000} for s in SIZES}, "training": {"objectives": ["sft"]}}
    bounded.write_text(yaml.safe_dump(limits))
    (tmp / "work").mkdir()
    cmd = [
        *SNAKEMAKE,
        "--profile",
        str(derived_slurm_profile(tmp / "profile")),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp / "work"),
        "--configfile",
        *map(str, [*CI, GPU, bounded]),
    ]
    start = time.monotonic()
    text, timed_out = run_to_the_end(cmd, timeout=900)
    seconds = time.monotonic() - start
    run_id = re.search(r"SLURM run ID: (\S+)", text)
    jobs = {i: j for i, j in slurm_jobs().items() if run_id and j.get("JobName") == run_id.group(1)}
    leftover = [i for i, j in jobs.items() if j["JobState"] in ("PENDING", "RUNNING")]
    if leftover:
        subprocess.run(["scancel", *leftover], capture_output=True)
    if timed_out:
        pytest.fail(f"the SLURM run took over 900 s (interrupted; {len(jobs)} SLURM jobs):\n{text[-4000:]}")
    print(f"CI-sized pipeline on the local SLURM: {seconds:.0f} s, {len(jobs)} SLURM jobs")
    # What Snakemake says it did: `localrule x:` ran here, `rule x:` went to SLURM (group
    # members are listed under their group).
    local = set(re.findall(r"^localrule (\w+):", text, re.M))
    remote = set(re.findall(r"^rule (\w+):", text, re.M)) - {"all"}
    grouped = {g for g in GROUPS if re.search(rf"Group job {g}\b", text)}
    return {
        "text": text,
        "seconds": seconds,
        "jobs": jobs,
        "workdir": tmp / "work",
        "local": local,
        "ran": local | remote | set().union(*(GROUPS[g] for g in grouped)),
        "submitted": remote - set().union(*GROUPS.values()) | grouped,
    }


@pytest.mark.from_scratch
def test_ci_pipeline_finishes_on_slurm(slurm_run):
    assert "steps (100%) done" in slurm_run["text"], slurm_run["text"][-8000:]
    report = slurm_run["workdir"] / "results" / "report"
    assert (report / "streams.csv").exists() and (report / "table1.md").exists()
    assert all(j["JobState"] == "COMPLETED" for j in slurm_run["jobs"].values())


@pytest.mark.from_scratch
def test_slurm_gave_gpu_rules_a_gpu_and_cpu_rules_none(slurm_run):
    by_rule = {}
    for job in slurm_run["jobs"].values():
        by_rule.setdefault(rule_of(job), []).append(job)
    assert set(by_rule) == slurm_run["submitted"], (set(by_rule), slurm_run["submitted"])
    assert set(GROUPS) | GPU_RULES - set().union(*GROUPS.values()) <= set(by_rule)
    for rule, rule_jobs in by_rule.items():
        gpu_rule = rule in GPU_RULES or rule in GROUPS
        for job in rule_jobs:
            assert asks_for_gpu(job) == gpu_rule, (rule, job.get("TresPerJob"), job.get("TRES"))
            assert job["Partition"] == ("gpu" if gpu_rule else "cpu"), (rule, job["Partition"])


@pytest.mark.from_scratch
def test_localrules_never_reach_slurm(slurm_run):
    ran_here = slurm_run["local"]
    assert {"problem_pool", "benchmark_problems", "report"} <= localrules()
    assert localrules() & slurm_run["ran"] <= ran_here
    assert not {rule_of(j) for j in slurm_run["jobs"].values()} & localrules()


@pytest.mark.from_scratch
def test_evaluations_share_slurm_jobs_one_gpu_each(slurm_run):
    groups = [j for j in slurm_run["jobs"].values() if rule_of(j) == "evaluation"]
    # 2 base + 5 checkpoint evaluations (SFT), at most 4 per SLURM job
    assert 2 <= len(groups) < 7, len(groups)
    for job in groups:
        assert "gpu:1" in job.get("TresPerJob", "") + job.get("TresPerNode", ""), job.get("TresPerJob")


@pytest.mark.from_scratch
def test_oracle_streams_never_exceed_the_profiles_oracle_api_limit(slurm_run):
    from datetime import datetime

    limit = load(REPO / "profiles" / "slurm" / "profile.yaml")["resources"]["oracle_api"]
    oracle = {s for s, spec in load(REPO / "config.yaml")["streams"].items() if spec["kind"] == "oracle"}
    spans = [
        (datetime.fromisoformat(j["StartTime"]), datetime.fromisoformat(j["EndTime"]))
        for j in slurm_run["jobs"].values()
        if rule_of(j) == "stream" and j["Comment"].split("_wildcards_")[1].removeprefix("tiny_") in oracle
    ]
    assert len(spans) == len(oracle) > limit
    most = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert most <= limit, f"{most} oracle stream jobs ran at once; the profile allows {limit}"


# -- a two-GPU training job on the real SLURM: one script per job, preempted and resumed -------

RUN = "tiny/slm_rft/sft/lr0.0003_bs8_ep1_seed0"  # one fine-tuning run of the CI-sized config
LONG = 200  # optimiser steps: long enough to be signalled mid-training


@pytest.fixture(scope="module")
def two_gpu_training(slurm, ci_run, tmp_path_factory):
    """One fine_tune job of a copy of the CI-sized run, asking SLURM for 2 (fake) GPUs: the stage
    launches 2 training processes (CPUs, gloo). Once it trains, SLURM signals the job's processes
    with SIGTERM, as the profile's warning signal before the time limit does (`scancel --signal`
    goes the same way: to every process of the job's steps); the job saves and fails, Snakemake
    resubmits it (1 retry) and the second job resumes."""
    tmp = tmp_path_factory.mktemp("slurm_gpu2")
    work = tmp / "work"
    shutil.copytree(ci_run, work, symlinks=True)
    log = work / "results" / "logs" / "training" / f"{RUN}.log"
    log.unlink()  # the CI run's: the job below is seen training once its own log shows a loss
    layer = tmp / "gpu2.yaml"
    layer.write_text(
        yaml.safe_dump(
            {
                "resources": {"training": {"gpu": 2, "mem_mb": 4000, "runtime": 10}},
                "training": {"hparams": {"micro_batch_size": 4, "max_steps": LONG}},
            }
        )
    )
    cmd = [
        *SNAKEMAKE,
        "--profile",
        str(derived_slurm_profile(tmp / "profile")),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        *map(str, [*CI, layer]),
        "--retries",
        "1",
        f"results/training/{RUN}/train.json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    deadline, signalled = time.monotonic() + 600, None
    while proc.poll() is None and time.monotonic() < deadline and signalled is None:
        if log.exists() and "'loss'" in log.read_text():
            running = [i for i, j in slurm_jobs().items() if rule_of(j) == "fine_tune" and j["JobState"] == "RUNNING"]
            if running:
                subprocess.run(["scancel", "--signal=TERM", running[0]], check=True)
                signalled = running[0]
        time.sleep(0.2)
    try:
        text = proc.communicate(timeout=600)[0]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        text = proc.communicate(timeout=120)[0]
        pytest.fail(f"the two-GPU training run did not finish:\n{text[-4000:]}")
    run_id = re.search(r"SLURM run ID: (\S+)", text)
    jobs = [j for j in slurm_jobs().values() if run_id and j.get("JobName") == run_id.group(1)]
    return {
        "text": text,
        "signalled": signalled,
        "jobs": jobs,
        "work": work,
        "slurm_logs": sorted((work / "results" / "logs" / "slurm" / "rule_fine_tune").rglob("*.log")),
    }


@pytest.mark.from_scratch
def test_a_two_gpu_training_job_runs_its_script_once_and_resumes_after_slurms_warning_signal(two_gpu_training):
    t = two_gpu_training
    assert t["signalled"], f"the job was never seen training:\n{t['text'][-4000:]}"
    assert "steps (100%) done" in t["text"], t["text"][-6000:]
    # two SLURM jobs (the signalled one, its retry), each asking for 2 GPUs, one process per job
    assert len(t["jobs"]) == 2 and all("gpu:2" in j.get("TresPerJob", "") for j in t["jobs"]), t["jobs"]
    assert {j["JobState"] for j in t["jobs"]} == {"FAILED", "COMPLETED"}
    assert len(t["slurm_logs"]) == 2
    logs = [p.read_text() for p in t["slurm_logs"]]
    first = next(x for x in logs if "stopped by a signal" in x)  # the stage's error line
    for text in logs:  # SLURM started the job's Snakemake (and so the stage) once, not once per GPU
        assert len(re.findall(r"^rule fine_tune:", text, re.M)) == 1, text[-3000:]
    stage_log = (t["work"] / "results" / "logs" / "training" / f"{RUN}.log").read_text()  # the retry's
    assert stage_log.count("launching 2 training processes (2 per node x 1)") == 1, stage_log[-3000:]
    assert "resumed from the checkpoint of step" in stage_log
    summary = json.loads((t["work"] / "results" / "training" / RUN / "train.json").read_text())
    step = int(re.search(r"stopped by a signal at step (\d+)", first).group(1))
    # FSDP was asked for (full fine-tuning); accelerate runs CPU processes as DDP (see test_distributed_training)
    assert summary["world_size"] == 2 and summary["strategy"] == "ddp"
    assert 0 < step < LONG and summary["resumed_from"] == step
    assert summary["steps"] == LONG
    assert not (t["work"] / "results" / "training_state" / RUN).exists()  # finished: removed


def test_the_slurm_profile_asks_a_warning_signal_for_training_jobs():
    profile = load(REPO / "profiles" / "slurm" / "profile.yaml")
    assert "--signal=TERM@" in profile["set-resources"]["fine_tune"]["slurm_extra"]
