# The paper's tables and figures, the paradox per training setting, and the run manifest,
# computed from every measured artifact.


# Tables and plots: seconds of work, not worth a place in the queue.
localrules:
    report,
    paradox,
    manifest,


rule report:
    input:
        report_inputs,
        decontamination="results/problems/decontamination.json",
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
        utility_breakdown=report(
            "results/report/utility_breakdown.md",
            caption="../report/utility_breakdown.rst",
            category="1. Tables of the paper",
            labels={"table": "utility by benchmark metadata (level, subject)"},
        ),
        decontamination=report(
            "results/report/decontamination.md",
            caption="../report/decontamination.rst",
            category="1. Tables of the paper",
            labels={"table": "decontamination of the pool"},
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
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
    params:
        streams=report_streams(),
        runs=report_runs(),
        base=report_base(),
        primary_reward=config["primary_reward"],
        table_defaults=table_defaults(),
        published=config["report"]["published"],
        stream_specs=config["streams"],
        oracles=config["oracles"],
        rewards=config["rewards"],
        alpha=config["report"]["alpha"],
        code=code("report"),
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
        claims="results/report/paradox_claims.json",
        table=report(
            "results/report/paradox_settings.csv",
            caption="../report/paradox_settings.rst",
            category="3. The paradox per training setting",
            labels={"artifact": "utility per setting (paradox_settings.csv)"},
        ),
    log:
        "results/logs/paradox.log",
    conda:
        "../envs/report.yaml"
    threads: 1
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
        alpha=config["report"]["alpha"],
        reward_traces=reward_traces(),
        oracles=config["oracles"],
        rewards=config["rewards"],
        timeout_s=config["rejection_sampling"]["timeout_s"],
        code=code("paradox"),
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
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
    params:
        config=config,
        students=STUDENTS,
        problem_sets=["pool", *BENCHMARKS],
        code=code("manifest"),
    script:
        "../scripts/stages/manifest.py"
