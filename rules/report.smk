# The paper's tables and figures, the paradox per training setting, and the run manifest,
# computed from every measured artifact.


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
    return files + [f for r in report_runs() for f in (r["train"], r["curve"], r["eval"])]


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


# Tables and plots: seconds of work, not worth a place in the queue.
localrules:
    report,
    paradox,
    manifest,


rule report:
    input:
        report_inputs,
    output:
        # published_comparison.md, only when report.published is set
        **published_comparison(),
        streams_csv=report(
            "results/report/streams.csv",
            caption="../report/streams.rst",
            category="1. Tables of the paper",
            labels={"table": "every run (streams.csv)"},
        ),
        table1=report(
            "results/report/table1.md",
            caption="../report/table1.rst",
            category="1. Tables of the paper",
            labels={"table": "Table 1: reward vs utility"},
        ),
        mechanism=report(
            "results/report/mechanism.md",
            caption="../report/mechanism.rst",
            category="1. Tables of the paper",
            labels={"table": "mechanism: perplexity vs utility"},
        ),
        figures=report(
            directory("results/report/figures"),
            patterns=["{figure}.png"],
            caption="../report/figures.rst",
            category="2. Figures of the paper",
            labels={"figure": "{figure}"},
        ),
    log:
        "results/logs/report.log",
    resources:
        **stage_resources("light"),
    params:
        streams=report_streams(),
        runs=report_runs(),
        base=report_base(),
        primary_reward=config["primary_reward"],
        table_defaults=table_defaults(),
        published=config["report"]["published"],
        code=code("report"),
    threads: 1
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/stages/report.py"


rule paradox:
    input:
        paradox_inputs,
    output:
        markdown=report(
            "results/report/paradox.md",
            caption="../report/paradox.rst",
            category="3. The paradox per training setting",
            labels={"artifact": "claims, verdict and fidelity (paradox.md)"},
        ),
        figure=report(
            "results/report/paradox_budget.png",
            caption="../report/paradox_budget.rst",
            category="3. The paradox per training setting",
            labels={"artifact": "utility vs training budget"},
        ),
        table=report(
            "results/report/paradox_settings.csv",
            caption="../report/paradox_settings.rst",
            category="3. The paradox per training setting",
            labels={"artifact": "utility per setting (paradox_settings.csv)"},
        ),
    log:
        "results/logs/paradox.log",
    resources:
        **stage_resources("light"),
    params:
        runs=report_runs(),
        streams=report_streams(),
        stream_specs=config["streams"],
        fidelity=paradox_fidelity(),
        primary_reward=config["primary_reward"],
        k=config["evaluation"]["k"],
        rounds=config["report"]["bootstrap_rounds"],
        seed=config["report"]["bootstrap_seed"],
        timeout_s=config["rejection_sampling"]["timeout_s"],
        code=code("paradox"),
    threads: 1
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/stages/paradox.py"


rule manifest:
    input:
        report=[p for p in report_outputs() if not p.endswith("manifest.json")],
        students=expand("results/student/{student}/student.json", student=STUDENTS),
        problems=["results/problems/pool.jsonl", *benchmark_files()],
    output:
        "results/report/manifest.json",
    log:
        "results/logs/manifest.log",
    resources:
        **stage_resources("light"),
    params:
        config=config,
        students=STUDENTS,
        problem_sets=["pool", *BENCHMARKS],
        code=code("manifest"),
    threads: 1
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/stages/manifest.py"
