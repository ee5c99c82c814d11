# Utility: Avg@k per benchmark suite, for the base student and every fine-tuned one.


rule evaluate_base:
    input:
        student="results/student/{student}/student.json",
        benchmarks=benchmark_files,
    output:
        scores="results/evaluation/{student}/base/scores.json",
        samples="results/evaluation/{student}/base/samples.jsonl",
    log:
        "results/logs/evaluation/{student}/base.log",
    conda:
        student_env("evaluation")
    threads: 1
    resources:
        gpu=res("evaluation", "gpu"),
        mem_mb=by_attempt("evaluation", "mem_mb"),
        runtime=by_attempt("evaluation", "runtime"),
    params:
        spec=config["evaluation"],
        benchmarks=BENCHMARKS,
        vllm=vllm_engine("evaluation"),
        checkpoint=False,
        method=None,
        code=code("evaluation.py"),
    script:
        "../scripts/evaluation.py"


rule evaluate_base_greedy:
    input:
        student="results/student/{student}/student.json",
        benchmarks=benchmark_files,
    output:
        scores="results/evaluation/{student}/base_greedy/scores.json",
        samples="results/evaluation/{student}/base_greedy/samples.jsonl",
    log:
        "results/logs/evaluation/{student}/base_greedy.log",
    conda:
        student_env("evaluation")
    threads: 1
    resources:
        gpu=res("evaluation", "gpu"),
        mem_mb=by_attempt("evaluation", "mem_mb"),
        runtime=by_attempt("evaluation", "runtime"),
    params:
        spec={**config["evaluation"], "temperature": 0, "k": 1},
        benchmarks=BENCHMARKS,
        vllm=vllm_engine("evaluation"),
        checkpoint=False,
        method=None,
        code=code("evaluation.py"),
    script:
        "../scripts/evaluation.py"


rule evaluate_checkpoint:
    input:
        student="results/student/{student}/student.json",
        checkpoint=f"results/training/{RUN}/checkpoint",
        benchmarks=benchmark_files,
    output:
        scores=f"results/evaluation/{RUN}/scores.json",
        samples=f"results/evaluation/{RUN}/samples.jsonl",
    log:
        f"results/logs/evaluation/{RUN}.log",
    conda:
        student_env("evaluation")
    threads: 1
    resources:
        gpu=res("evaluation", "gpu"),
        mem_mb=by_attempt("evaluation", "mem_mb"),
        runtime=by_attempt("evaluation", "runtime"),
    params:
        spec=config["evaluation"],
        benchmarks=BENCHMARKS,
        vllm=vllm_engine("evaluation"),
        checkpoint=True,
        method=config["training"]["method"],
        code=code("evaluation.py"),
    script:
        "../scripts/evaluation.py"
