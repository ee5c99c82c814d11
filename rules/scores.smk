# Perceived quality: each reward model's score of every trace of a stream (the built-in process
# reward, or a learned reward model through transformers).


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
        **stage_resources("reward"),
    params:
        spec=reward_spec,
        replay=REPLAY,
        code=reward_code,
    script:
        "../scripts/stages/reward_scores.py"
