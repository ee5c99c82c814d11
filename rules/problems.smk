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
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
    params:
        spec=config["problems"]["pool"],
        replay=REPLAY,
        code=code("problems.py"),
    script:
        "../scripts/problems.py"


rule benchmark_problems:
    input:
        archived=archived,
    output:
        "results/problems/benchmarks/{benchmark}.jsonl",
    log:
        "results/logs/benchmark_problems/{benchmark}.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
    params:
        spec=benchmark_spec,
        replay=REPLAY,
        code=code("problems.py"),
    script:
        "../scripts/problems.py"
