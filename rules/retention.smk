# Semantic retention of each rewritten stream: the stream's oracle judges how much of the
# student's source trace a rewrite keeps (1-5, formatting ignored), next to a cheap edit
# similarity. The judge's finished requests share the oracle's cache with its stream.


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
        oracle=oracle_spec,
        oracle_name=oracle_name,
        oracle_cache=oracle_cache,
        prompt=oracle_prompt("judge"),
        replay=REPLAY,
        code=oracle_code("retention"),
    script:
        "../scripts/stages/retention.py"
