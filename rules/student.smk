# The student (SLM): a hub model pinned by revision, or the embedded tiny one, built here.

from scripts.backends.models import STUDENT_BUILDERS, student_source


def student_spec(wildcards):
    return config["students"][wildcards.student]


def student_code(wildcards):
    """The built-in student's builder counts only where the student is built here."""
    source = student_source(student_spec(wildcards))
    return code("student", *([STUDENT_BUILDERS.loader(source)] if source == "builtin" else []))


rule student:
    input:
        archived=archived,
    output:
        student="results/student/{student}/student.json",
    log:
        "results/logs/student/{student}.log",
    resources:
        **stage_resources("student"),
    params:
        spec=student_spec,
        replay=REPLAY,
        code=student_code,
    threads: 2
    conda:
        "../envs/training.yaml"
    script:
        "../scripts/stages/student.py"
