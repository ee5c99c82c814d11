# Utility: Avg@k per benchmark suite, for the base student (sampled, and greedy as a fidelity
# check) and every fine-tuned one.


def benchmark_files(wildcards=None):
    return [f"results/problems/benchmarks/{b}.jsonl" for b in BENCHMARKS]


rule evaluate_base:
    input:
        student="results/student/{student}/student.json",
        benchmarks=benchmark_files,
    output:
        scores="results/evaluation/{student}/base/scores.json",
        samples="results/evaluation/{student}/base/samples.jsonl",
    log:
        "results/logs/evaluation/{student}/base.log",
    resources:
        **stage_resources("evaluation"),
    params:
        spec=config["evaluation"],
        benchmarks=BENCHMARKS,
        vllm=vllm_engine("evaluation"),
        method=None,
        code=generation_code("evaluation"),
    threads: 1
    conda:
        student_env("evaluation")
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
        method=config["training"]["method"],
        code=generation_code("evaluation"),
