# Problems: the training pool and the benchmark suites, in one normalised schema.

from scripts.data.problems import PROBLEM_SOURCES


def benchmark_spec(wildcards):
    return config["problems"]["benchmarks"][wildcards.benchmark]


def benchmark_code(wildcards):
    return code("problems", PROBLEM_SOURCES.loader(benchmark_spec(wildcards)["source"]))


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
    resources:
        **stage_resources("light"),
    params:
        spec=config["problems"]["pool"],
        replay=REPLAY,
        code=code("problems", PROBLEM_SOURCES.loader(config["problems"]["pool"]["source"])),
    threads: 1
    conda:
        "../envs/data.yaml"
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
