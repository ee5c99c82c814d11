# Shared by every stage: the validated config, the names it defines, wildcard constraints,
# each stage's resources and conda env, and the code version that makes a stage's code visible to
# Snakemake's rerun triggers. What one stage alone reads is in inputs.smk.

import os
import sys

from snakemake.utils import validate

# The workflow and every job it starts (local, conda or SLURM) import the project package.
sys.path.insert(0, workflow.basedir)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p
    )
)

from scripts.infrastructure import study_config
from scripts.infrastructure.provenance import code_version

# Secrets first: the schema's messages would quote a key pasted into any field.
study_config.refuse_secrets(config)
validate(config, "../schemas/config.schema.yaml")
study_config.check(config)

REPLAY = config["archive"]["replay"]
STUDENTS = list(config["students"])
STREAMS = list(config["streams"])
ORACLE_STREAMS = [s for s, v in config["streams"].items() if v["kind"] == "oracle"]
BENCHMARKS = list(config["problems"]["benchmarks"])
REWARDS = list(config["rewards"])
RUN = "{student}/{stream}/{objective}/lr{lr}_bs{batch_size}_ep{epochs}_seed{seed}"


wildcard_constraints:
    student="|".join(STUDENTS),
    stream="|".join(STREAMS),
    benchmark="|".join(BENCHMARKS),
    reward="|".join(REWARDS),
    objective="sft|dft",
    lr="[0-9.e+-]+",
    batch_size="[0-9]+",
    epochs="[0-9.]+",
    seed="[0-9]+",


def code(stage, *implementations):
    """The code version of ``scripts/stages/<stage>.py``: the stage, what it imports, and the
    implementations (registry loaders) the config chooses for it. Blind to comments, docstrings
    and formatting; a param, so a change to what the code does reruns exactly its jobs.
    """
    path = os.path.join(workflow.basedir, "scripts", "stages", f"{stage}.py")
    return code_version(path, implementations)


def stage_resources(stage):
    """A stage's resources from ``resources.<stage>``: GPUs as configured; memory and wall time
    times the attempt (1, 2, ...), so a job killed for either comes back asking for more.
    """
    spec = config["resources"][stage]
    # Several nodes (training): SLURM's --gpus counts a job's GPUs in all, --gres per node.
    gpus = (
        {"gpu": spec["gpu"]}
        if spec.get("nodes", 1) == 1
        else {"nodes": spec["nodes"], "gres": f"gpu:{spec['gpu']}"}
    )
    return {
        **gpus,
        "mem_mb": lambda wildcards, attempt: spec["mem_mb"] * attempt,
        "runtime": lambda wildcards, attempt: spec["runtime"] * attempt,
    }


def student_env(stage):
    """The conda env of a stage that runs the student: vLLM's own stack when the stage's backend
    is vllm (vLLM pins its own torch and transformers), else the training stack."""
    return (
        "../envs/vllm.yaml"
        if config[stage]["backend"] == "vllm"
        else "../envs/training.yaml"
    )


def vllm_engine(stage):
    """The `vllm` block for a stage whose backend is vllm, else None (so editing it reruns only
    the stages that use it)."""
    return config["vllm"] if config[stage]["backend"] == "vllm" else None


def archived(wildcards=None):
    """The replayed archive's checksum list: a new archive reruns the replayed stages."""
    return [os.path.join(REPLAY, "checksums.sha256")] if REPLAY else []
