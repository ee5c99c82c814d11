"""Training in several processes and surviving preemption, on CPUs (gloo), through the code the
``fine_tune`` stage runs: ``scripts.training.launch`` starts ``python -m scripts.training.worker``
in one process or, through ``torchrun``, in two.

- Two processes at the same effective batch (micro-batch 2 x 2 processes vs 2 x accumulation 2)
  give the loss curve and final weights of one. Measured (2026-12-07): every logged loss equal;
  weights equal to the last bit for DDP (LoRA) and FSDP DFT, within 2.4e-7 for FSDP SFT (the
  reduce-scatter sums in another order); the tests allow 1e-6 in the weights and 1e-6 in each
  logged loss, and print the differences (``pytest -s``).
- FSDP: accelerate 1.15 runs CPU processes as DDP even when FSDP is asked for (it turns FSDP on
  for GPU-like devices only); torch's FSDP2 runs on CPU, so these tests put
  ``tests/fsdp_on_cpu`` (a sitecustomize that keeps accelerate's FSDP plugin) on the processes'
  path. Without it the summary says ``strategy: ddp``, which a test checks too.
- A run killed (SIGKILL) after a checkpoint resumes from it and ends with the weights of a run
  never interrupted; SIGTERM (SLURM's warning signal) makes every process save at the end of
  its step and exit 75, and the rerun ends the same way.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from scripts.infrastructure.stage_log import StageError
from scripts.training import launch

REPO = Path(__file__).resolve().parents[1]
FSDP_ON_CPU = REPO / "tests" / "fsdp_on_cpu"
HP = {
    "lr": 1e-3,
    "batch_size": 4,
    "micro_batch_size": 2,
    "epochs": 1,
    "max_steps": 6,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "max_length": 128,
    "bf16": False,
}
LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """A stream of 24 traces of unequal lengths (so micro-batches hold unequal token counts)."""
    path = tmp_path_factory.mktemp("stream") / "stream.jsonl"
    rows = [
        {
            "id": f"p{i}",
            "problem": f"Ana has {i} coins and gets {i * 3 % 7} more.",
            "trace": f"Ana starts with {i} coins." + " Then she counts again." * (i % 4) + f"\n\\boxed{{{i}}}",
        }
        for i in range(2, 26)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def spec(tmp_path: Path, student: dict, stream: Path, world: int, method="full", objective="sft", **hp) -> dict:
    out = tmp_path / f"{method}-{objective}-{world}"
    out.mkdir(parents=True, exist_ok=True)
    return {
        "student": student,
        "stream": str(stream),
        "hp": {**HP, **hp},
        "objective": objective,
        "seed": 0,
        "method": method,
        "lora": LORA,
        "eos_token": None,
        "strategy": launch.strategy(method, world),
        "world_size": world,
        "checkpoint_steps": 2,
        "state_dir": str(out / "state"),
        "outputs": {
            k: str(out / name)
            for k, name in (("checkpoint", "checkpoint"), ("curve", "loss_curve.csv"), ("summary", "train.json"))
        },
    }


def start(s: dict, fsdp_on_cpu: bool = False) -> subprocess.Popen:
    """The worker in one process, or the launcher's processes for several, as the stage starts them."""
    stamp = str(launch.prepare_state(s))
    path = [str(FSDP_ON_CPU)] if fsdp_on_cpu else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(REPO)]), "OMP_NUM_THREADS": "1"}
    log = open(Path(s["state_dir"]).parent / "log.txt", "a")
    if s["world_size"] > 1:
        return launch.start(stamp, s["world_size"], 1, log, env, new_session=True)
    cmd = [sys.executable, "-m", launch.WORKER, stamp]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def finish(s: dict, fsdp_on_cpu: bool = False) -> dict:
    proc = start(s, fsdp_on_cpu)
    assert proc.wait(timeout=300) == 0, log_of(s)
    return result(s)


def log_of(s: dict) -> str:
    return (Path(s["state_dir"]).parent / "log.txt").read_text()[-4000:]


def result(s: dict) -> dict:
    out = s["outputs"]
    folder = Path(out["checkpoint"])
    weights = load_file(folder / ("adapter_model.safetensors" if s["method"] == "lora" else "model.safetensors"))
    curve = [line.split(",") for line in Path(out["curve"]).read_text().splitlines()[1:]]
    return {
        "weights": weights,
        "losses": [float(row[1]) for row in curve],
        "summary": json.loads(Path(out["summary"]).read_text()),
    }


def assert_same_training(a: dict, b: dict, steps: int = HP["max_steps"], what: str = "") -> None:
    assert len(a["losses"]) == len(b["losses"]) == steps
    loss = max(abs(x - y) for x, y in zip(a["losses"], b["losses"]))
    assert loss <= TOLERANCE, (a["losses"], b["losses"])
    # FSDP's gathered state dict holds tied weights twice (lm_head = embed_tokens): the same values
    extra = a["weights"].keys() - b["weights"].keys()
    assert extra <= {"lm_head.weight"} and b["weights"].keys() <= a["weights"].keys()
    for k in extra:
        assert torch.equal(a["weights"][k], a["weights"]["model.embed_tokens.weight"])
    worst = max((a["weights"][k] - b["weights"][k]).abs().max().item() for k in b["weights"])
    print(f"{what}: largest loss difference {loss:.3g}, largest weight difference {worst:.3g}")  # (pytest -s)
    assert worst <= TOLERANCE, f"weights differ by up to {worst}"


@pytest.fixture(scope="module")
def one_process(tiny_student, stream, tmp_path_factory):
    """Reference runs in one process (micro-batch 2 x accumulation 2), by (method, objective)."""
    tmp = tmp_path_factory.mktemp("one")
    return {
        key: finish(spec(tmp, tiny_student, stream, 1, *key))
        for key in (("full", "sft"), ("full", "dft"), ("lora", "sft"))
    }


@pytest.mark.parametrize("objective", ["sft", "dft"])
def test_fsdp_on_two_processes_trains_like_one_process_at_the_same_effective_batch(
    one_process, tiny_student, stream, tmp_path, objective
):
    two = finish(spec(tmp_path, tiny_student, stream, 2, "full", objective), fsdp_on_cpu=True)
    assert two["summary"]["strategy"] == "fsdp" and two["summary"]["world_size"] == 2
    assert one_process["full", objective]["summary"]["strategy"] == "single"
    assert_same_training(two, one_process["full", objective], what=f"FSDP {objective}, 2 processes vs 1")
    # the weights moved: equal results of an untrained model would prove nothing
    base = load_file(Path(tiny_student["path"]) / "model.safetensors")
    assert any(not torch.equal(base[k], v) for k, v in two["weights"].items() if k in base)


def test_lora_on_two_processes_replicates_the_model_and_trains_like_one_process(
    one_process, tiny_student, stream, tmp_path
):
    two = finish(spec(tmp_path, tiny_student, stream, 2, "lora", "sft"))
    assert two["summary"]["strategy"] == "ddp"
    assert_same_training(two, one_process["lora", "sft"], what="LoRA (DDP) sft, 2 processes vs 1")
    assert any(v.abs().max() > 0 for k, v in two["weights"].items() if "lora_B" in k)


def test_an_effective_batch_that_cannot_be_split_over_the_processes_fails_before_training():
    with pytest.raises(StageError, match=r"not a multiple of micro_batch_size x devices \(2 x 4 = 8\)"):
        launch.check_batch({"batch_size": 4, "micro_batch_size": 2}, 4)
    assert launch.check_batch({"batch_size": 16, "micro_batch_size": 2}, 4) == 2


def test_world_size_is_gpus_per_node_times_nodes():
    assert launch.world_size({"gpu": 0}) == (1, 1)
    assert launch.world_size({"gpu": 2}) == (2, 1)
    assert launch.world_size({"gres": "gpu:a100:4", "nodes": 2}) == (4, 2)
    assert launch.strategy("full", 8) == "fsdp" and launch.strategy("lora", 8) == "ddp"
    assert launch.strategy("full", 1) is None


def test_a_multi_node_launch_runs_one_torchrun_per_node_meeting_at_the_first_node(monkeypatch):
    monkeypatch.setattr(launch, "first_host", lambda nodelist: "gpu-a01")
    cmd = launch.command("run.json", 4, 2, {"SLURM_JOB_ID": "77", "SLURM_JOB_NODELIST": "gpu-a[01-02]"})
    assert cmd[:6] == ["srun", "--overlap", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert {"--nnodes=2", "--nproc-per-node=4", "--rdzv-backend=c10d", "--rdzv-endpoint=gpu-a01:29500"} <= set(cmd)
    assert cmd[-3:] == ["-m", "scripts.training.worker", "run.json"]
    with pytest.raises(StageError, match="needs a SLURM allocation"):
        launch.command("run.json", 4, 2, {})


def wait_for_checkpoint(s: dict, proc: subprocess.Popen, step: int) -> None:
    marker = Path(s["state_dir"]) / f"checkpoint-{step}" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, f"the run ended before its checkpoint of step {step}:\n{log_of(s)}"
        assert time.monotonic() < deadline, log_of(s)
        time.sleep(0.05)


def test_a_run_killed_after_a_checkpoint_resumes_and_ends_with_the_uninterrupted_weights(
    tiny_student, stream, tmp_path
):
    # 16 steps over 3 epochs (6 steps each), a checkpoint every 4: SIGKILL once step 8's (in the
    # second epoch) is complete.
    hp = {"max_steps": 16, "epochs": 3}
    s = {**spec(tmp_path / "killed", tiny_student, stream, 1, "full", "sft", **hp), "checkpoint_steps": 4}
    proc = start(s)
    wait_for_checkpoint(s, proc, 8)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not Path(s["outputs"]["summary"]).exists()
    resumed = finish(s)
    assert resumed["summary"]["resumed_from"] in (8, 12), resumed["summary"]
    whole = finish({**spec(tmp_path / "whole", tiny_student, stream, 1, "full", "sft", **hp), "checkpoint_steps": 4})
    assert whole["summary"]["resumed_from"] is None
    assert resumed["losses"] == whole["losses"]
    assert all(torch.equal(resumed["weights"][k], v) for k, v in whole["weights"].items())
    print("SIGKILL after a checkpoint, resumed vs uninterrupted: losses and weights bit for bit equal")  # (pytest -s)


def test_sigterm_saves_a_checkpoint_in_every_process_and_the_rerun_ends_like_an_uninterrupted_run(
    tiny_student, stream, tmp_path
):
    # Two processes, full fine-tuning, a checkpoint only on the signal (checkpoint_steps 0):
    # SLURM's warning signal reaches every process of the job, the launcher included (which
    # ignores it and waits for the training processes to save and exit). Without the
    # tests' FSDP shim accelerate runs CPU processes as DDP, and the summary says so.
    hp = {"max_steps": 20, "epochs": 4}
    s = {**spec(tmp_path, tiny_student, stream, 2, "full", "sft", **hp), "checkpoint_steps": 0}
    assert s["strategy"] == "fsdp"
    proc = start(s)
    log = Path(s["state_dir"]).parent / "log.txt"
    deadline = time.monotonic() + 240
    while "'loss'" not in log.read_text():  # training has begun
        assert proc.poll() is None and time.monotonic() < deadline, log_of(s)
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) != 0  # the launcher outlived its processes and reports their failure
    stopped = json.loads((Path(s["state_dir"]) / launch.PREEMPTED).read_text())
    assert 0 < stopped["step"] < 20 and "a rerun resumes" in stopped["message"]
    assert (Path(s["state_dir"]) / f"checkpoint-{stopped['step']}" / "rng_state_1.pth").exists()
    resumed = finish(s)
    assert resumed["summary"]["resumed_from"] == stopped["step"]
    assert resumed["summary"]["strategy"] == "ddp"
    # uninterrupted, in one process: the same effective batch, so the same training
    whole = finish(spec(tmp_path / "whole", tiny_student, stream, 1, "full", "sft", **hp))
    assert_same_training(resumed, whole, steps=20, what="SIGTERM, resumed in 2 processes vs 1 uninterrupted")


def test_the_config_check_refuses_a_batch_the_training_processes_cannot_split_naming_the_keys():
    from scripts.infrastructure.study_config import training_world

    config = {
        "resources": {"training": {"gpu": 4, "nodes": 2}, "evaluation": {"gpu": 1, "nodes": 3}},
        "training": {"hparams": {"micro_batch_size": 8}, "batch_size": [256, 16]},
    }
    problems = training_world(config)
    assert len(problems) == 2
    assert "resources.evaluation.nodes is 3: only training" in problems[0]
    assert problems[1].startswith("training.batch_size: 16 cannot be split over 8 training processes")
    assert "resources.training.gpu 4 x nodes 2" in problems[1] and "use a multiple of 64" in problems[1]
    config["resources"] = {"training": {"gpu": 0, "nodes": 1}}
    assert training_world(config) == []  # one process: any batch
