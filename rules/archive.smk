# The frozen archive: what is expensive or cannot be made again, with checksums, so a later
# run replays everything downstream (set `archive.replay` to the folder) without sampling,
# GPUs or API access. Run it as a target: `snakemake --cores 2 freeze`.


localrules:
    freeze,


rule freeze:
    input:
        frozen_inputs,
    output:
        directory("results/frozen"),
    log:
        "results/logs/freeze.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        gpu=res("light", "gpu"),
        mem_mb=by_attempt("light", "mem_mb"),
        runtime=by_attempt("light", "runtime"),
    params:
        paths=frozen_paths(),
        config=config,
        code=code("archive.py"),
    script:
        "../scripts/archive.py"
