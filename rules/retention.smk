# Semantic retention of each rewritten stream: a judge (`retention.judge`, one oracle for every
# stream as in the paper, else the stream's own oracle) scores how much of the student's source
# trace a rewrite keeps (1-5, formatting ignored) on a sample of it (`retention.sample`), next to a
# cheap edit similarity of every rewrite. The judge's finished requests share its oracle's cache.


rule retention:
    input:
        archived=archived,
        stream="results/streams/{student}/{stream}.jsonl",
        solvable="results/rejection_sampling/{student}/solvable.jsonl",
    output:
        scores="results/retention/{student}/{stream}.jsonl",
        summary="results/retention/{student}/{stream}.json",
    log:
        "results/logs/retention/{student}/{stream}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
        oracle_api=oracle_api,
    params:
        oracle=oracle_spec(retention_judge),
        oracle_name=retention_judge,
        oracle_cache=oracle_cache(retention_judge),
        prompt=oracle_prompt("judge", retention_judge),
        sample=config["retention"]["sample"],
        seed=config["retention"]["seed"],
        replay=REPLAY,
        code=oracle_code("retention", retention_judge),
    script:
        "../scripts/stages/retention.py"
