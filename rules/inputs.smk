# What each stage reads from the config and from upstream outputs: the spec of a
# job's wildcards, the code version with the implementations its config chooses (a params
# trigger), the oracle's cache and prompts, and the artifact lists of the report, the paradox
# analysis, the manifest and the frozen archive. (What every rule shares is in common.smk.)

from scripts.backends.generation import GENERATORS
from scripts.backends.models import STUDENT_BUILDERS, student_source
from scripts.backends.oracles import ORACLES
from scripts.backends.oracles.prompts import fingerprint
from scripts.backends.rewards import REWARD_MODELS
from scripts.data.problems import PROBLEM_SOURCES

# --- Problems ----------------------------------------------------------------------------------


def benchmark_spec(wildcards):
    return config["problems"]["benchmarks"][wildcards.benchmark]


def benchmark_code(wildcards):
    return code("problems", PROBLEM_SOURCES.loader(benchmark_spec(wildcards)["source"]))


# --- The student -------------------------------------------------------------------------------


def student_spec(wildcards):
    return config["students"][wildcards.student]


def student_code(wildcards):
    """The built-in student's builder counts only where the student is built here."""
    source = student_source(student_spec(wildcards))
    return code(
        "student", *([STUDENT_BUILDERS.loader(source)] if source == "builtin" else [])
    )


# --- Stages that run the student (native traces, adaptation cost, evaluation) ------------------


def generation_code(stage):
    """A student-running stage's code with the generation backend its config chooses."""
    return code(stage, GENERATORS.loader(config[stage]["backend"]))


# --- Data streams and their retention (the oracle a stream uses) -------------------------------


def stream_spec(wildcards):
    return config["streams"][wildcards.stream]


def oracle_spec(wildcards):
    stream = stream_spec(wildcards)
    return config["oracles"][stream["oracle"]] if stream["kind"] == "oracle" else None


def oracle_name(wildcards):
    return stream_spec(wildcards)["oracle"]


def oracle_code(stage):
    """A stage's code with the oracle backend its stream uses (none for other streams)."""

    def version(wildcards):
        spec = oracle_spec(wildcards)
        return code(stage, *([ORACLES.loader(spec["backend"])] if spec else []))

    return version


def oracle_cache(wildcards):
    """The oracle's per-item cache of finished requests. Not an output: Snakemake deletes a
    job's outputs before it reruns the job, and this file must outlive every rerun (a killed
    or re-prompted stream re-sends only what is not in it)."""
    spec = oracle_spec(wildcards)
    if spec is None or spec["backend"] == "builtin":
        return None  # sends nothing, caches nothing
    return f"results/oracle_cache/{oracle_name(wildcards)}.sqlite"


def oracle_prompt(task):
    """What an API oracle sends for ``task`` (the stream's own, or "judge"): a fingerprint of the
    template's messages, so editing them reruns the stream and its descendants (and re-sends only
    the items whose prompt changed), while editing a template's preamble reruns nothing.
    """

    def prompt(wildcards):
        spec = oracle_spec(wildcards)
        if spec is None or spec["backend"] == "builtin":
            return None
        return fingerprint(spec["prompts"][task or stream_spec(wildcards)["task"]])

    return prompt


def oracle_api(wildcards):
    """Oracle API slots a stream job holds (1 for oracle streams); `--resources oracle_api=N`
    in a profile caps how many such jobs run at once, across the whole run."""
    return int(stream_spec(wildcards)["kind"] == "oracle")


# --- Reward scores -----------------------------------------------------------------------------


def reward_spec(wildcards):
    return config["rewards"][wildcards.reward]


def reward_code(wildcards):
    return code(
        "reward_scores", REWARD_MODELS.loader(reward_spec(wildcards)["backend"])
    )


# --- Evaluation --------------------------------------------------------------------------------


def benchmark_files(wildcards=None):
    return [f"results/problems/benchmarks/{b}.jsonl" for b in BENCHMARKS]


# --- What the report, the paradox analysis and the manifest read -------------------------------


def report_streams():
    """Every stream's measured files the report reads (reward, cost, summary, retention)."""
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
    """Every fine-tuning run with its training summary, loss curve and evaluation."""
    out = []
    for r in study_config.runs(config):
        d = RUN.format(**r)
        out.append(
            {
                **r,
                "lr": float(r["lr"]),
                "epochs": float(r["epochs"]),
                "train": f"results/training/{d}/train.json",
                "curve": f"results/training/{d}/loss_curve.csv",
                "eval": f"results/evaluation/{d}/scores.json",
                "samples": f"results/evaluation/{d}/samples.jsonl",
            }
        )
    return out


def report_base():
    return [
        {"student": st, "eval": f"results/evaluation/{st}/base/scores.json"}
        for st in STUDENTS
    ]


def stream_files(s):
    return [*s["reward"].values(), s["adaptation_cost"], s["summary"]] + (
        [s["retention"]] if s["retention"] else []
    )


def report_inputs(wildcards=None):
    files = [b["eval"] for b in report_base()]
    files += [f for s in report_streams() for f in stream_files(s)]
    return files + [
        f for r in report_runs() for f in (r["train"], r["curve"], r["eval"])
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
    files = [r["samples"] for r in report_runs()]
    for f in paradox_fidelity().values():
        files += [f["base_sampled"], f["base_greedy"], f["solvable"]]
        files += [p for s in f["streams"].values() for p in s.values()]
    return files + [f for s in report_streams() for f in stream_files(s)]


def table_defaults():
    """The Table 1 setting: report.table_* where set, else the grid's first value."""
    t, rep = config["training"], config["report"]
    return {
        key: t[key][0] if rep[f"table_{key}"] is None else rep[f"table_{key}"]
        for key in ("lr", "batch_size", "epochs")
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


# --- The frozen archive ------------------------------------------------------------------------


def frozen_paths():
    """What `freeze` archives: problem sets, students, native traces, every stream, reward
    scores and retention judgements."""
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
