# Utility: Avg@k per benchmark suite, for the base student (sampled, and greedy as a fidelity
# check) and every fine-tuned one.


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
        **stage_resources("evaluation"),
    params:
        spec=config["evaluation"],
        benchmarks=BENCHMARKS,
        vllm=vllm_engine("evaluation"),
        extraction=evaluation_extraction,
        method=None,
        code=generation_code("evaluation"),
    script:
        "../scripts/stages/evaluation.py"


use rule evaluate_base as evaluate_base_greedy with:
    output:
        scores="results/evaluation/{student}/base_greedy/scores.json",
        samples="results/evaluation/{student}/base_greedy/samples.jsonl",
    log:
        "results/logs/evaluation/{student}/base_greedy.log",
    params:
        spec={**config["evaluation"], "temperature": 0, "k": 1},
        benchmarks=BENCHMARKS,
        vllm=vllm_engine("evaluation"),
        extraction=evaluation_extraction,
        method=None,
        code=generation_code("evaluation"),


use rule evaluate_base as evaluate_checkpoint with:
    input:
        student="results/student/{student}/student.json",
        checkpoint=f"results/training/{RUN}/checkpoint",
        benchmarks=benchmark_files,
    output:
        scores=f"results/evaluation/{RUN}/scores.json",
        samples=f"results/evaluation/{RUN}/samples.jsonl",
    log:
        f"results/logs/evaluation/{RUN}.log",
    params:
        spec=config["evaluation"],
        benchmarks=BENCHMARKS,
        vllm=vllm_engine("evaluation"),
        extraction=evaluation_extraction,
        method=config["training"]["method"],
        code=generation_code("evaluation"),
