# Data streams over the solvable set: SLM-RFT, reference solutions and the oracle streams.


include: "oracles.smk"


rule stream:
    input:
        archived=archived,
        solvable="results/rejection_sampling/{student}/solvable.jsonl",
        prompt=oracle_prompt,
    output:
        stream="results/streams/{student}/{stream}.jsonl",
        rejected="results/streams/{student}/{stream}.rejected.jsonl",
        summary="results/streams/{student}/{stream}.summary.json",
    log:
        "results/logs/streams/{student}/{stream}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
        oracle_api=oracle_api,
    params:
        spec=stream_spec,
        oracle=oracle_spec,
        oracle_cache=oracle_cache,
        timeout_s=config["rejection_sampling"]["timeout_s"],
        replay=REPLAY,
        code=code("streams.py"),
    script:
        "../scripts/streams.py"
