# Perceived quality: each reward model's score of every trace of a stream (the built-in process
# reward, or a learned reward model through transformers: scripts/reward_models.py).


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
        "../envs/training.yaml"
    threads: 1
    resources:
        gpu=res("reward", "gpu"),
        mem_mb=by_attempt("reward", "mem_mb"),
        runtime=by_attempt("reward", "runtime"),
    params:
        spec=reward_spec,
        replay=REPLAY,
        code=code("reward.py"),
        models_code=code("reward_models.py"),
    script:
        "../scripts/reward.py"
