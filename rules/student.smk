# The student (SLM): a hub model pinned by revision, or the embedded tiny one, built here.


rule student:
    output:
        student="results/student/{student}/student.json",
    log:
        "results/logs/student/{student}.log",
    conda:
        "../envs/training.yaml"
    threads: 2
    resources:
        gpu=res("student", "gpu"),
        mem_mb=res("student", "mem_mb"),
        runtime=res("student", "runtime"),
    params:
        spec=student_spec,
        code=code("student.py"),
    script:
        "../scripts/student.py"
