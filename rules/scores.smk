# Perceived quality: each reward model's score of every trace of a stream (the built-in process
# reward, or a learned reward model through transformers).

from scripts.backends.rewards import REWARD_MODELS


def reward_spec(wildcards):
    return config["rewards"][wildcards.reward]


def reward_code(wildcards):
    return code("reward_scores", REWARD_MODELS.loader(reward_spec(wildcards)["backend"]))


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
    resources:
        **stage_resources("reward"),
    params:
        spec=reward_spec,
        replay=REPLAY,
        code=reward_code,
    threads: 1
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/stages/reward_scores.py"
