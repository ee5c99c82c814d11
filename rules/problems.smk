# Problems: the training pool and the benchmark suites, in one normalised schema.


rule problem_pool:
    output:
        "results/problems/pool.jsonl",
    log:
        "results/logs/problem_pool.log",
    conda:
        "../envs/data.yaml"
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        spec=config["problems"]["pool"],
        code=code("problems.py"),
    script:
        "../scripts/problems.py"


rule benchmark_problems:
    output:
        "results/problems/benchmarks/{benchmark}.jsonl",
    log:
        "results/logs/benchmark_problems/{benchmark}.log",
    conda:
        "../envs/data.yaml"
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    params:
        spec=benchmark_spec,
        code=code("problems.py"),
    script:
        "../scripts/problems.py"
