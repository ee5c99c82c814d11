# The paper's tables and figures, computed from every measured artifact.


# Tables and plots: seconds of work, not worth a place in the queue.
localrules:
    report,
    paradox,
    manifest,


rule report:
    input:
        report_inputs,
    output:
        streams_csv="results/report/streams.csv",
        table1="results/report/table1.md",
        mechanism="results/report/mechanism.md",
        figures=directory("results/report/figures"),
    log:
        "results/logs/report.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
    params:
        streams=report_streams(),
        runs=report_runs(),
        base=report_base(),
        primary_reward=config["primary_reward"],
        table_defaults=table_defaults(),
        code=code("report.py"),
    script:
        "../scripts/report.py"


rule paradox:
    input:
        paradox_inputs,
    output:
        markdown="results/report/paradox.md",
        figure="results/report/paradox_budget.png",
        table="results/report/paradox_settings.csv",
    log:
        "results/logs/paradox.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
    params:
        runs=paradox_runs(),
        streams=report_streams(),
        stream_specs=config["streams"],
        fidelity=paradox_fidelity(),
        primary_reward=config["primary_reward"],
        k=config["evaluation"]["k"],
        rounds=config["report"]["bootstrap_rounds"],
        seed=config["report"]["bootstrap_seed"],
        timeout_s=config["rejection_sampling"]["timeout_s"],
        code=code("paradox.py"),
    script:
        "../scripts/paradox.py"


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
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
    params:
        config=config,
        repo=workflow.basedir,
        students=STUDENTS,
        problem_sets=["pool", *BENCHMARKS],
        code=code("manifest.py"),
    script:
        "../scripts/manifest.py"
