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
        **stage_resources("student"),
    params:
        spec=student_build_spec,
        replay=REPLAY,
        code=student_code,
    script:
        "../scripts/stages/student.py"
