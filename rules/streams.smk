# Data streams over the solvable set: SLM-RFT, reference solutions and the oracle streams (an
# oracle task applied to each kept trace), each with the reasons its rejected traces were kept out.


rule stream:
    input:
        archived=archived,
        solvable="results/rejection_sampling/{student}/solvable.jsonl",
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
        **stage_resources("light"),
        oracle_api=oracle_api,
    params:
        spec=stream_spec,
        oracle=oracle_spec(),
        oracle_cache=oracle_cache(),
        prompt=oracle_prompt(None),
        timeout_s=config["rejection_sampling"]["timeout_s"],
        replay=REPLAY,
        code=oracle_code("streams"),
    script:
        "../scripts/stages/streams.py"
