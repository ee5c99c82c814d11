# Rejection sampling: one correct native trace per problem; the solvable set every stream shares.


rule rejection_sampling:
    input:
        pool="results/problems/pool.jsonl",
        traces="results/native_traces/{student}.jsonl",
    output:
        solvable="results/rejection_sampling/{student}/solvable.jsonl",
        verdicts="results/rejection_sampling/{student}/verdicts.jsonl",
        summary="results/rejection_sampling/{student}/summary.json",
    log:
        "results/logs/rejection_sampling/{student}.log",
    conda:
        "../envs/data.yaml"
    threads: 2
    resources:
        **stage_resources("light"),
    params:
        spec=config["rejection_sampling"],
        extraction=rejection_extraction,
        code=code("rejection_sampling"),
    script:
        "../scripts/stages/rejection_sampling.py"
