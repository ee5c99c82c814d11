# Perceived quality: each reward model's score of every trace of a stream.


rule reward_scores:
    input:
        stream="results/streams/{student}/{stream}.jsonl",
        solvable="results/rejection_sampling/{student}/solvable.jsonl",
    output:
        scores="results/scores/{student}/{stream}/{reward}.jsonl",
        summary="results/scores/{student}/{stream}/{reward}.json",
    log:
        "results/logs/scores/{student}/{stream}/{reward}.log",
    conda:
        "../envs/data.yaml"
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        spec=reward_spec,
        code=code("reward.py"),
    script:
        "../scripts/reward.py"
