# The bill before it is paid: `snakemake oracle_estimate` prints (and writes) what every oracle
# stream and its retention judge will send and cost -- requests, input tokens, expected output
# tokens, money at the config's prices, the Batch API's beside it -- from the solvable sets where
# they exist, else from the pool with the expected solve rate. It is not part of `all`.


# Seconds of counting, and the login node reaches the hub for a tokenizer.
localrules:
    oracle_estimate,


rule oracle_estimate:
    input:
        pool="results/problems/pool.jsonl",
        prompts=estimate_prompts,
    output:
        markdown="results/report/oracle_estimate.md",
        json="results/report/oracle_estimate.json",
    log:
        "results/logs/oracle_estimate.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
    params:
        sets=estimate_items(),
        state=estimate_state(),
        streams=config["streams"],
        oracles=config["oracles"],
        costs=config["oracle_costs"],
        retention=config["retention"],
        caches=estimate_caches(),
        code=estimate_code(),
    script:
        "../scripts/stages/oracle_estimate.py"
