# The frozen archive: what is expensive or cannot be made again, with checksums, so a later
# run replays everything downstream (set `archive.replay` to the folder) without sampling,
# GPUs or API access. Run it as a target: `snakemake --cores 2 freeze`.


def frozen_paths():
    """What `freeze` archives: problem sets, students, native traces, every stream, reward
    scores and retention judgements."""
    paths = ["results/problems/pool.jsonl"] + benchmark_files()
    for st in STUDENTS:
        paths += [f"results/student/{st}", f"results/native_traces/{st}.jsonl"]
        for s in STREAMS:
            paths += [
                f"results/streams/{st}/{s}.{part}"
                for part in ("jsonl", "rejected.jsonl", "summary.json")
            ]
            paths += [
                f"results/scores/{st}/{s}/{r}.{ext}"
                for r in REWARDS
                for ext in ("jsonl", "json")
            ]
        paths += [
            f"results/retention/{st}/{s}.{ext}"
            for s in ORACLE_STREAMS
            for ext in ("jsonl", "json")
        ]
    return paths


def frozen_inputs(wildcards=None):
    return [
        f"{p}/student.json" if p.startswith("results/student/") else p
        for p in frozen_paths()
    ]


localrules:
    freeze,


rule freeze:
    input:
        frozen_inputs,
    output:
        directory("results/frozen"),
    log:
        "results/logs/freeze.log",
    resources:
        **stage_resources("light"),
    params:
        paths=frozen_paths(),
        config=config,
        code=code("freeze"),
    threads: 1
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/stages/freeze.py"
