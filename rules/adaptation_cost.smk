# Adaptation cost: the student's one forward pass over each stream -- perplexity (global and per
# quarter), low-probability token fraction, Rank-Surprisal Ratio, and the token data for drift.


rule adaptation_cost:
    input:
        student="results/student/{student}/student.json",
        stream="results/streams/{student}/{stream}.jsonl",
    output:
        per_trace="results/adaptation_cost/{student}/{stream}.jsonl",
        summary="results/adaptation_cost/{student}/{stream}.json",
        tokens="results/adaptation_cost/{student}/{stream}.tokens.npz",
    log:
        "results/logs/adaptation_cost/{student}/{stream}.log",
    conda:
        student_env("adaptation_cost")
    threads: 1
    resources:
        **stage_resources("adaptation_cost"),
    params:
        backend=config["adaptation_cost"]["backend"],
        vllm=vllm_engine("adaptation_cost"),
        batch_size=config["adaptation_cost"]["batch_size"],
        low_prob_threshold=config["adaptation_cost"]["low_prob_threshold"],
        rank_clip=config["adaptation_cost"]["rank_clip"],
        code=generation_code("adaptation_cost"),
    script:
        "../scripts/stages/adaptation_cost.py"
