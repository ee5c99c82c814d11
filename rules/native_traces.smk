# Native traces: N samples per pool problem from the student at temperature T.


rule native_traces:
    input:
        archived=archived,
        student="results/student/{student}/student.json",
        pool="results/problems/pool.jsonl",
    output:
        "results/native_traces/{student}.jsonl",
    log:
        "results/logs/native_traces/{student}.log",
    conda:
        student_env("native_traces")
    threads: 2
    resources:
        **stage_resources("native_traces"),
    params:
        spec=config["native_traces"],
        vllm=vllm_engine("native_traces"),
        replay=REPLAY,
        code=generation_code("native_traces"),
    script:
        "../scripts/stages/native_traces.py"
