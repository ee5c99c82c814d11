# Problems: the training pool and the benchmark suites, in one normalised schema.


rule problem_pool:
    output:
        "results/problems/pool.jsonl",
    log:
        "results/logs/problem_pool.log",
    params:
        spec=config["problems"]["pool"],
        code=code("problems.py"),
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/problems.py"


rule benchmark_problems:
    output:
        "results/problems/benchmarks/{benchmark}.jsonl",
    log:
        "results/logs/benchmark_problems/{benchmark}.log",
    params:
        spec=benchmark_spec,
        code=code("problems.py"),
    resources:
        mem_mb=res("light", "mem_mb"),
        runtime=res("light", "runtime"),
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/problems.py"
