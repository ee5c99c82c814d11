# The mechanism, as a target (`snakemake mechanism`): which measure of a stream's drift -- reward,
# perplexity (global, Q1..Q4), low-probability fraction, Rank-Surprisal Ratio, the learnability
# probe -- predicts the utility it gives, across every stream and student of the run.


rule mechanism:
    input:
        report_inputs,
    output:
        markdown="results/report/mechanism_experiment.md",
        table="results/report/mechanism_experiment.csv",
        correlations="results/report/mechanism_correlations.json",
        figure="results/report/mechanism_dose_response.png",
    log:
        "results/logs/mechanism.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
    params:
        streams=report_streams(),
        runs=report_runs(),
        stream_specs=config["streams"],
        oracles=config["oracles"],
        exposure=foreign_style_exposure(),
        alpha=config["report"]["alpha"],
        code=code("mechanism"),
    script:
        "../scripts/stages/mechanism.py"
