# Perceived quality: each reward model's score of every trace of a stream.


rule reward_scores:
    input:
        archived=archived,
        stream="results/streams/{student}/{stream}.jsonl",
        solvable="results/rejection_sampling/{student}/solvable.jsonl",
    output:
        scores="results/scores/{student}/{stream}/{reward}.jsonl",
        summary="results/scores/{student}/{stream}/{reward}.json",
    log:
        "results/logs/scores/{student}/{stream}/{reward}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
    params:
        spec=reward_spec,
        replay=REPLAY,
        code=code("reward.py"),
    script:
        "../scripts/reward.py"
