# Adaptation cost: the student's perplexity on each stream, globally and per quarter.


rule adaptation_cost:
    input:
        student="results/student/{student}/student.json",
        stream="results/streams/{student}/{stream}.jsonl",
    output:
        per_trace="results/adaptation_cost/{student}/{stream}.jsonl",
        summary="results/adaptation_cost/{student}/{stream}.json",
    log:
        "results/logs/adaptation_cost/{student}/{stream}.log",
    conda:
        "../envs/training.yaml"
    threads: 1
    resources:
        gpu=res("adaptation_cost", "gpu"),
        mem_mb=by_attempt("adaptation_cost", "mem_mb"),
        runtime=by_attempt("adaptation_cost", "runtime"),
    params:
        spec=config["adaptation_cost"],
        code=code("adaptation_cost.py"),
    script:
        "../scripts/adaptation_cost.py"
