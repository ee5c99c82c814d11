# Helpers shared by the rules: config validation, wildcard constraints, target lists, and the
# params that make each job's inputs visible to Snakemake's rerun triggers.

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

from scripts.code_version import code_version
from scripts import study_config

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


def code(script):
    """Hash of a stage script and the project modules it imports (for the params trigger)."""
    return code_version(os.path.join(workflow.basedir, "scripts", script))


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


def res(stage, key):
    """A stage's portable resource, `resources.<stage>.<key>` in the config."""
    return config["resources"][stage][key]


def by_attempt(stage, key):
    """A resource that grows with each retry: the configured value times the attempt (1, 2, ...).

    A job killed for memory or wall time comes back (`retries` in a profile) asking for more.
    """
    base = res(stage, key)
    return lambda wildcards, attempt: base * attempt


def oracle_api(wildcards):
    """Oracle API slots a stream job holds (1 for oracle streams); `--resources oracle_api=N`
    in a profile caps how many such jobs run at once, across the whole run."""
    return int(config["streams"][wildcards.stream]["kind"] == "oracle")


def archived(wildcards=None):
    """The replayed archive's checksum list: a new archive reruns the replayed stages."""
    return [os.path.join(REPLAY, "checksums.sha256")] if REPLAY else []


def frozen_paths():
    """What `freeze` archives: what is expensive or cannot be made again."""
    paths = ["results/problems/pool.jsonl"] + benchmark_files()
    for st in STUDENTS:
        paths += [f"results/student/{st}", f"results/native_traces/{st}.jsonl"]
        for s in STREAMS:
            paths += [
                f"results/streams/{st}/{s}.{part}"
                for part in ("jsonl", "rejected.jsonl", "summary.json")
            ]
            paths += [
                f"results/scores/{st}/{s}/{r}.{ext}"
                for r in REWARDS
                for ext in ("jsonl", "json")
            ]
        paths += [
            f"results/retention/{st}/{s}.{ext}"
            for s in ORACLE_STREAMS
            for ext in ("jsonl", "json")
        ]
    return paths


def frozen_inputs(wildcards=None):
    return [
        f"{p}/student.json" if p.startswith("results/student/") else p
        for p in frozen_paths()
    ]


def student_spec(wildcards):
    return config["students"][wildcards.student]


def benchmark_spec(wildcards):
    return config["problems"]["benchmarks"][wildcards.benchmark]


def stream_spec(wildcards):
    return config["streams"][wildcards.stream]


def reward_spec(wildcards):
    return config["rewards"][wildcards.reward]


def oracle_spec(wildcards):
    stream = config["streams"][wildcards.stream]
    return config["oracles"][stream["oracle"]] if stream["kind"] == "oracle" else None


def benchmark_files(wildcards=None):
    return [f"results/problems/benchmarks/{b}.jsonl" for b in BENCHMARKS]


def run_wildcards():
    return study_config.runs(config)


def report_streams():
    return [
        {
            "student": st,
            "stream": s,
            "reward": {r: f"results/scores/{st}/{s}/{r}.json" for r in REWARDS},
            "adaptation_cost": f"results/adaptation_cost/{st}/{s}.json",
            "summary": f"results/streams/{st}/{s}.summary.json",
            "retention": (
                f"results/retention/{st}/{s}.json" if s in ORACLE_STREAMS else None
            ),
        }
        for st in STUDENTS
        for s in STREAMS
    ]


def report_runs():
    out = []
    for r in run_wildcards():
        d = RUN.format(**r)
        out.append(
            {
                **r,
                "lr": float(r["lr"]),
                "epochs": float(r["epochs"]),
                "train": f"results/training/{d}/train.json",
                "curve": f"results/training/{d}/loss_curve.csv",
                "eval": f"results/evaluation/{d}/scores.json",
            }
        )
    return out


def paradox_runs():
    return [
        {**r, "samples": r["eval"].replace("scores.json", "samples.jsonl")}
        for r in report_runs()
    ]


def paradox_fidelity():
    return {
        st: {
            "base_sampled": f"results/evaluation/{st}/base/scores.json",
            "base_greedy": f"results/evaluation/{st}/base_greedy/scores.json",
            "solvable": f"results/rejection_sampling/{st}/solvable.jsonl",
            "streams": {
                s: {
                    "stream": f"results/streams/{st}/{s}.jsonl",
                    "rejected": f"results/streams/{st}/{s}.rejected.jsonl",
                }
                for s in STREAMS
            },
        }
        for st in STUDENTS
    }


def paradox_inputs(wildcards=None):
    files = [r["samples"] for r in paradox_runs()]
    for f in paradox_fidelity().values():
        files += [f["base_sampled"], f["base_greedy"], f["solvable"]]
        files += [p for s in f["streams"].values() for p in s.values()]
    return files + stream_inputs()


def report_base():
    return [
        {"student": st, "eval": f"results/evaluation/{st}/base/scores.json"}
        for st in STUDENTS
    ]


def stream_inputs():
    """Every stream's measured files the report reads (scores, cost, summary, retention)."""
    files = []
    for s in report_streams():
        files += [*s["reward"].values(), s["adaptation_cost"], s["summary"]]
        files += [s["retention"]] if s["retention"] else []
    return files


def report_inputs(wildcards=None):
    files = [b["eval"] for b in report_base()] + stream_inputs()
    for r in report_runs():
        files += [r["train"], r["curve"], r["eval"]]
    return files


def table_defaults():
    t, rep = config["training"], config["report"]
    return {
        "lr": rep["table_lr"] if rep["table_lr"] is not None else t["lr"][0],
        "batch_size": (
            rep["table_batch_size"]
            if rep["table_batch_size"] is not None
            else t["batch_size"][0]
        ),
        "epochs": (
            rep["table_epochs"] if rep["table_epochs"] is not None else t["epochs"][0]
        ),
    }


def published_comparison():
    """The `report` rule's side-by-side table against the published numbers: an output only
    when `report.published` is set (configs/paper.yaml sets it)."""
    if config["report"]["published"] is None:
        return {}
    return {
        "published_comparison": report(
            "results/report/published_comparison.md",
            caption="../report/published_comparison.rst",
            category="1. Tables of the paper",
            labels={"table": "against the published numbers"},
        )
    }


def report_outputs():
    return [
        "results/report/streams.csv",
        "results/report/table1.md",
        "results/report/mechanism.md",
        # plain paths: on an input of `all`, a report flag would resolve its caption
        # relative to the Snakefile's folder
        *map(str, published_comparison().values()),
        "results/report/figures",
        "results/report/paradox.md",
        *expand("results/drift/{student}/drift.md", student=STUDENTS),
        *expand(
            "results/retention/{student}/{stream}.json",
            student=STUDENTS,
            stream=ORACLE_STREAMS,
        ),
        "results/report/manifest.json",
    ]
