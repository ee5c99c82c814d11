# The paper's tables and figures, computed from every measured artifact.


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
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        streams=report_streams(),
        runs=report_runs(),
        base=report_base(),
        primary_reward=config["primary_reward"],
        table_defaults=table_defaults(),
        code=code("report.py"),
    script:
        "../scripts/report.py"
