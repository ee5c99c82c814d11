# What each stage reads from the config and from upstream outputs: the spec of a
# job's wildcards, the code version with the implementations its config chooses (a params
# trigger), the oracle's cache and prompts, and the artifact lists of the report, the paradox
# analysis, the manifest and the frozen archive. (What every rule shares is in common.smk.)

from scripts.backends.generation import GENERATORS
from scripts.backends.models import STUDENT_BUILDERS, student_source
from scripts.backends.oracles import ORACLES
from scripts.backends.oracles.base import answer_spec
from scripts.backends.oracles.prompts import fingerprint
from scripts.backends.rewards import REWARD_MODELS
from scripts.data.problems import PROBLEM_SOURCES

# --- Problems ----------------------------------------------------------------------------------


# How answers are graded is read by the grading stages alone (see answer extraction below).
GRADING_ONLY = ("answer_extraction",)


def benchmark_spec(wildcards):
    return config["problems"]["benchmarks"][wildcards.benchmark]


def benchmark_problem_spec(wildcards):
    """What the benchmark_problems job reads: the benchmark without its grading choice."""
    spec = benchmark_spec(wildcards)
    return {k: v for k, v in spec.items() if k not in GRADING_ONLY}


def benchmark_code(wildcards):
    return code("problems", PROBLEM_SOURCES.loader(benchmark_spec(wildcards)["source"]))


# --- The student -------------------------------------------------------------------------------


def student_spec(wildcards):
    return config["students"][wildcards.student]


def student_build_spec(wildcards):
    """What the student job reads: the student without its grading choice."""
    return {k: v for k, v in student_spec(wildcards).items() if k not in GRADING_ONLY}


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


# --- Data streams and their retention (the oracle a stream uses, the one that judges it) -------


def stream_spec(wildcards):
    return config["streams"][wildcards.stream]


def stream_oracle(wildcards):
    """The oracle a stream's rewrites come from (None for a stream that is not an oracle's)."""
    stream = stream_spec(wildcards)
    return stream["oracle"] if stream["kind"] == "oracle" else None


def retention_judge(wildcards):
    """The oracle that judges a stream's rewrites: `retention.judge`, one for every stream as in
    the paper, else the stream's own oracle."""
    own = stream_oracle(wildcards)
    return own and (config["retention"]["judge"] or own)


def oracle_spec(who=stream_oracle):
    """The chosen oracle's spec (``who``: the stream's oracle or its judge) without the keys that
    decide only whether and how requests are sent (budget caps, batch mode, the estimate's
    counting): raising a cap reruns no stream."""

    def spec(wildcards):
        name = who(wildcards)
        return answer_spec(config["oracles"][name]) if name else None

    return spec


def oracle_code(stage, who=stream_oracle):
    """A stage's code with the oracle backend it uses (none for streams of no oracle)."""

    def version(wildcards):
        spec = oracle_spec(who)(wildcards)
        return code(stage, *([ORACLES.loader(spec["backend"])] if spec else []))

    return version


def oracle_cache(who=stream_oracle):
    """The oracle's per-item cache of finished requests. Not an output: Snakemake deletes a
    job's outputs before it reruns the job, and this file must outlive every rerun (a killed
    or re-prompted stream re-sends only what is not in it)."""

    def cache(wildcards):
        spec = oracle_spec(who)(wildcards)
        if spec is None or spec["backend"] == "builtin":
            return None  # sends nothing, caches nothing
        return f"results/oracle_cache/{who(wildcards)}.sqlite"

    return cache


def oracle_prompt(task, who=stream_oracle):
    """What an API oracle sends for ``task`` (the stream's own, or "judge"): a fingerprint of the
    template's messages, so editing them reruns the stream and its descendants (and re-sends only
    the items whose prompt changed), while editing a template's preamble reruns nothing.
    """

    def prompt(wildcards):
        spec = oracle_spec(who)(wildcards)
        if spec is None or spec["backend"] == "builtin":
            return None
        return fingerprint(spec["prompts"][task or stream_spec(wildcards)["task"]])

    return prompt


def oracle_api(wildcards):
    """Oracle API slots a stream job holds (1 for oracle streams); `--resources oracle_api=N`
    in a profile caps how many such jobs run at once, across the whole run."""
    return int(stream_spec(wildcards)["kind"] == "oracle")


# --- The oracle estimate (a target: snakemake oracle_estimate) ----------------------------------


def estimate_items():
    """Per student, what the estimate counts: the solvable set where rejection sampling has made
    it, else the pool. Read as params, not inputs: an estimate never starts the sampling.
    """
    solvable = {
        st: f"results/rejection_sampling/{st}/solvable.jsonl" for st in STUDENTS
    }
    return {
        st: (
            {"source": "solvable", "path": solvable[st]}
            if os.path.exists(solvable[st])
            else {"source": "pool", "path": "results/problems/pool.jsonl"}
        )
        for st in STUDENTS
    }


def estimate_caches():
    """Every API oracle's cache (what is already answered, and spent)."""
    return {
        name: f"results/oracle_cache/{name}.sqlite"
        for name, spec in config["oracles"].items()
        if spec["backend"] != "builtin"
    }


def estimate_state():
    """When each solvable set and cache the estimate reads last changed: a changed one reruns it."""
    paths = [i["path"] for i in estimate_items().values()]
    paths += list(estimate_caches().values())
    return {p: os.stat(p).st_mtime_ns for p in paths if os.path.exists(p)}


def estimate_prompts(wildcards=None):
    """The prompt files the API oracle streams and their judges send."""
    files = set()
    for s in config["streams"].values():
        if s["kind"] != "oracle":
            continue
        judge = config["retention"]["judge"] or s["oracle"]
        for name, task in ((s["oracle"], s["task"]), (judge, "judge")):
            spec = config["oracles"][name]
            if spec["backend"] == "openai":
                files.add(spec["prompts"][task])
    return sorted(files)


def estimate_code():
    oracles = {
        name
        for s in config["streams"].values()
        if s["kind"] == "oracle"
        for name in (s["oracle"], config["retention"]["judge"] or s["oracle"])
    }
    backends = {config["oracles"][name]["backend"] for name in oracles}
    return code("oracle_estimate", *(ORACLES.loader(b) for b in sorted(backends)))


# --- Reward scores -----------------------------------------------------------------------------


def reward_spec(wildcards):
    return config["rewards"][wildcards.reward]


def trained_reward_model(wildcards):
    """The outcome reward model this pipeline trains for the student, for a reward whose spec says
    `trained_on` (none for a hub model or the built-in reward)."""
    if not reward_spec(wildcards).get("trained_on"):
        return []
    return f"results/reward_models/{wildcards.student}/{wildcards.reward}/model"


def trained_rewards():
    return [r for r, spec in config["rewards"].items() if spec.get("trained_on")]


def reward_code(wildcards):
    return code(
        "reward_scores", REWARD_MODELS.loader(reward_spec(wildcards)["backend"])
    )


# --- Answer extraction (rejection sampling, evaluation) -----------------------------------------


def rejection_extraction(wildcards):
    """How the student's native traces' answers are found: its own choice, else the stage's."""
    own = student_spec(wildcards)["answer_extraction"]
    return own or config["rejection_sampling"]["answer_extraction"]


def evaluation_extraction(wildcards):
    """benchmark -> how answers are found: the student's choice, else the benchmark's, else
    evaluation's."""
    own = student_spec(wildcards)["answer_extraction"]
    default = config["evaluation"]["answer_extraction"]
    return {
        b: own or spec["answer_extraction"] or default
        for b, spec in config["problems"]["benchmarks"].items()
    }


# --- Training ----------------------------------------------------------------------------------


def training_state(wildcards):
    """A fine-tuning run's checkpoints. Not an output: Snakemake deletes a failed job's outputs,
    and these must outlive it (a rerun of a killed or preempted job resumes from them).
    """
    return f"results/training_state/{RUN.format(**wildcards)}"


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


def reward_traces():
    """Each reward model's per-trace scores, by student and stream (the paradox's C1 test)."""
    return {
        st: {
            r: {s: f"results/scores/{st}/{s}/{r}.jsonl" for s in STREAMS}
            for r in REWARDS
        }
        for st in STUDENTS
    }


def paradox_inputs(wildcards=None):
    files = [r["samples"] for r in report_runs()]
    files += [
        f for by in reward_traces().values() for r in by.values() for f in r.values()
    ]
    for f in paradox_fidelity().values():
        files += [f["base_sampled"], f["base_greedy"], f["solvable"]]
        files += [p for s in f["streams"].values() for p in s.values()]
    return files + [f for s in report_streams() for f in stream_files(s)]


def foreign_style_exposure():
    """Each student's prior exposure to foreign styles in pretraining (NaN for a hub student)."""
    return {
        st: (
            spec["builtin"]["foreign_style_fraction"]
            if spec["model"] == "builtin"
            else float("nan")
        )
        for st, spec in config["students"].items()
    }


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
        "results/report/utility_breakdown.md",
        "results/report/decontamination.md",
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
    paths = [
        "results/problems/pool.jsonl",
        "results/problems/decontamination.json",
    ] + benchmark_files()
    for st in STUDENTS:
        paths += [f"results/student/{st}", f"results/native_traces/{st}.jsonl"]
        paths += [f"results/reward_models/{st}/{r}" for r in trained_rewards()]
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
    """The files whose jobs make `frozen_paths` (a folder by the record its job writes)."""
    stand_in = {
        "results/student/": "student.json",
        "results/reward_models/": "train.json",
    }
    return [
        next(
            (
                os.path.join(p, f)
                for prefix, f in stand_in.items()
                if p.startswith(prefix)
            ),
            p,
        )
        for p in frozen_paths()
    ]


def offline_inputs(wildcards=None):
    """With `archive.wheelhouse` the archive reinstalls itself offline and a replay checks every
    artifact against the run's manifest: `freeze` then waits for the whole study."""
    return ["results/report/manifest.json"] if config["archive"]["wheelhouse"] else []
