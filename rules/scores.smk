# Perceived quality: each reward model's score of every trace of a stream (the built-in process
# reward, or a learned reward model through transformers: a hub one, or an outcome reward model
# this pipeline trains on the student's own native traces).


rule outcome_reward_model:
    input:
        archived=archived,
        student="results/student/{student}/student.json",
        pool="results/problems/pool.jsonl",
        traces="results/native_traces/{student}.jsonl",
        verdicts="results/rejection_sampling/{student}/verdicts.jsonl",
    output:
        model=directory("results/reward_models/{student}/{reward}/model"),
        curve="results/reward_models/{student}/{reward}/loss_curve.csv",
        summary="results/reward_models/{student}/{reward}/train.json",
    log:
        "results/logs/reward_models/{student}/{reward}.log",
    conda:
        "../envs/training.yaml"
    threads: 1
    resources:
        **stage_resources("reward"),
    params:
        spec=reward_spec,
        replay=REPLAY,
        code=code("outcome_reward_model"),
    script:
        "../scripts/stages/outcome_reward_model.py"


rule reward_scores:
    input:
        archived=archived,
        stream="results/streams/{student}/{stream}.jsonl",
        solvable="results/rejection_sampling/{student}/solvable.jsonl",
        model=trained_reward_model,
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
