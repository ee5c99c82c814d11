# Problems: the training pool and the benchmark suites, in one normalised schema; the pool is
# decontaminated against every benchmark problem before any native trace is sampled.


# Downloads (a `datasets` source) run where Snakemake runs: compute nodes may be offline.
localrules:
    problem_pool,
    benchmark_problems,


rule problem_pool:
    input:
        archived=archived,
        benchmarks=benchmark_files,
    output:
        problems="results/problems/pool.jsonl",
        decontamination="results/problems/decontamination.json",
    log:
        "results/logs/problem_pool.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
    params:
        spec=config["problems"]["pool"],
        benchmarks=BENCHMARKS,
        decontamination=config["problems"]["decontamination"],
        replay=REPLAY,
        code=code(
            "problems", PROBLEM_SOURCES.loader(config["problems"]["pool"]["source"])
        ),
    script:
        "../scripts/stages/problems.py"


use rule problem_pool as benchmark_problems with:
    input:
        archived=archived,
    output:
        problems="results/problems/benchmarks/{benchmark}.jsonl",
    log:
        "results/logs/benchmark_problems/{benchmark}.log",
    params:
        spec=benchmark_problem_spec,
        benchmarks=None,
        decontamination=None,
        replay=REPLAY,
        code=benchmark_code,
