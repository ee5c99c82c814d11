# The student (SLM): a hub model pinned by revision, or the embedded tiny one, built here.


rule student:
    input:
        archived=archived,
    output:
        student="results/student/{student}/student.json",
    log:
        "results/logs/student/{student}.log",
    conda:
        "../envs/training.yaml"
    threads: 2
    resources:
        gpu=res("student", "gpu"),
        mem_mb=by_attempt("student", "mem_mb"),
        runtime=by_attempt("student", "runtime"),
    params:
        spec=student_spec,
        replay=REPLAY,
        code=code("student.py"),
    script:
        "../scripts/student.py"
