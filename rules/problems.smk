# Problems: the training pool and the benchmark suites, in one normalised schema.


# Downloads (a `datasets` source) run where Snakemake runs: compute nodes may be offline.
localrules:
    problem_pool,
    benchmark_problems,


rule problem_pool:
    input:
        archived=archived,
    output:
        "results/problems/pool.jsonl",
    log:
        "results/logs/problem_pool.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
    params:
        spec=config["problems"]["pool"],
        replay=REPLAY,
        code=code(
            "problems", PROBLEM_SOURCES.loader(config["problems"]["pool"]["source"])
        ),
    script:
        "../scripts/stages/problems.py"


use rule problem_pool as benchmark_problems with:
    output:
        "results/problems/benchmarks/{benchmark}.jsonl",
    log:
        "results/logs/benchmark_problems/{benchmark}.log",
    params:
        spec=benchmark_spec,
        replay=REPLAY,
        code=benchmark_code,
