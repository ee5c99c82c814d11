"""How a fine-tuning job becomes processes: its world size from the job's resources (GPUs per
node x nodes), the sharding strategy, the launcher command, and the resumable state a
preempted job leaves behind.

- One process (no GPU, or one): the stage trains in its own process.
- Several GPUs on one node: ``torchrun --standalone`` starts one process per GPU. On a machine
  without CUDA the same processes run on CPUs with the gloo backend (how the tests run it).
- Several nodes (a SLURM allocation): ``srun`` starts one ``torchrun`` per node, which meet at
  the first node of the allocation (c10d rendezvous) and start one process per GPU each.

Full fine-tuning of several processes shards the model (FSDP full shard), so a 7B student
fits where one GPU's memory does not hold its weights, gradients and AdamW state; LoRA
replicates it (DDP): its trainable part is small.

The launcher runs with SIGTERM ignored (and torchrun told not to handle it), so the warning
signal SLURM sends to every process of the job reaches the training processes, which save a
checkpoint and stop, instead of torchrun killing them after its 30 s shutdown grace.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from scripts.infrastructure.stage_log import StageError
from scripts.training.trainer import accumulation_steps

WORKER = "scripts.training.worker"
RENDEZVOUS_PORT = 29500
PREEMPTED = "preempted.json"  # written by the first process when a signal stopped training


def processes_per_node(resources) -> int:
    """GPUs per node of a job (its ``gpu`` resource, or the count of a ``gres: gpu[:type]:N``);
    at least 1."""
    gpus = resources.get("gpu") or 0
    gres = resources.get("gres") or ""
    if not gpus and gres.startswith("gpu"):
        gpus = int(gres.rsplit(":", 1)[1]) if ":" in gres else 1
    return max(1, int(gpus))


def world_size(resources) -> tuple[int, int]:
    """(processes per node, nodes) of a job."""
    return processes_per_node(resources), max(1, int(resources.get("nodes") or 1))


def strategy(method: str, world: int) -> str | None:
    """FSDP (full shard) for full fine-tuning on several processes, DDP for LoRA; None alone."""
    if world == 1:
        return None
    return "ddp" if method == "lora" else "fsdp"


def check_batch(hp: dict, world: int) -> int:
    """The gradient accumulation that keeps the effective batch at ``hp["batch_size"]`` on
    ``world`` processes; a StageError (before any training) when none can."""
    return accumulation_steps(hp["batch_size"], min(hp["micro_batch_size"], hp["batch_size"]), world)


def command(spec_path: str, per_node: int, nodes: int, environ=os.environ) -> list[str]:
    """The launcher command line for ``per_node`` x ``nodes`` training processes."""
    run = [sys.executable, "-m", "torch.distributed.run"]
    worker = ["-m", WORKER, spec_path]
    if nodes == 1:
        return [*run, "--standalone", f"--nproc-per-node={per_node}", *worker]
    job = environ.get("SLURM_JOB_ID")
    if not job:
        raise StageError(f"resources.training.nodes is {nodes}: a multi-node run needs a SLURM allocation")
    head = first_host(environ["SLURM_JOB_NODELIST"])
    return [
        "srun",
        "--overlap",  # inside the job's own step, which holds the first node's resources
        f"--nodes={nodes}",
        f"--ntasks={nodes}",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        *run,
        f"--nnodes={nodes}",
        f"--nproc-per-node={per_node}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={head}:{RENDEZVOUS_PORT}",
        f"--rdzv-id={job}",
        *worker,
    ]


def first_host(nodelist: str) -> str:
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def _ignore_sigterm():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def start(spec_path: str, per_node: int, nodes: int, log, env=None, new_session=False) -> subprocess.Popen:
    """Start the training processes; their output goes to ``log``. They stay in the caller's
    process group (a Ctrl-C or a kill of the job's group reaches them) unless ``new_session``."""
    cmd = command(spec_path, per_node, nodes)
    print(f"launching {per_node * nodes} training processes ({per_node} per node x {nodes}): {' '.join(cmd)}")
    log.flush()
    env = {
        **(os.environ if env is None else env),
        "TORCHELASTIC_SIGNALS_TO_HANDLE": "SIGINT,SIGHUP,SIGQUIT",
        "PYTHONUNBUFFERED": "1",  # the job's log shows each step as it ends, not at exit
    }
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_ignore_sigterm, start_new_session=new_session
    )


def launch(spec_path: str, per_node: int, nodes: int, log) -> int:
    """Start the training processes and wait for them; the launcher's exit code. A SIGTERM to
    this process (SLURM signals every process of the job) is noted, not fatal: it waits for the
    training processes to save their checkpoint, since SLURM ends the job's remaining processes
    once this one is gone."""

    def noted(signum, frame):
        print("SIGTERM: the training processes save a checkpoint at the end of their step and stop", flush=True)

    previous = signal.signal(signal.SIGTERM, noted)
    try:
        return start(spec_path, per_node, nodes, log).wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- The resumable state of a run ----------------------------------------------------------------


def fingerprint(spec: dict) -> str:
    """What makes a checkpoint resumable by a run: everything that shapes the training (the
    stream's content, the student, the settings, the world size), not where outputs go."""
    keep = {k: v for k, v in spec.items() if k not in ("outputs", "state_dir")}
    keep["stream_sha256"] = hashlib.sha256(Path(spec["stream"]).read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def prepare_state(spec: dict) -> Path:
    """The run's state folder, emptied when it holds another run's checkpoints; the spec is
    written there (the processes read it)."""
    state = Path(spec["state_dir"])
    stamp = state / "run.json"
    fp = fingerprint(spec)
    if stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") != fp:
        print(f"{state} holds checkpoints of different settings: starting over")
        shutil.rmtree(state)
    state.mkdir(parents=True, exist_ok=True)
    (state / PREEMPTED).unlink(missing_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fp, "spec": spec}, indent=2, sort_keys=True))
    return stamp
