# The frozen archive: what is expensive or cannot be made again, with checksums, so a later
# run replays everything downstream (set `archive.replay` to the folder) without sampling,
# GPUs or API access. Run it as a target: `snakemake --cores 2 freeze`. With
# `archive.wheelhouse: true` it also reinstalls itself offline: the wheels of the main stack's
# lock, the source and the run's manifest, replayed by `python3 results/frozen/replay.py DEST`.


localrules:
    freeze,


rule freeze:
    input:
        artifacts=frozen_inputs(),
        manifest=offline_inputs(),
    output:
        directory("results/frozen"),
    log:
        "results/logs/freeze.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        **stage_resources("light"),
    params:
        paths=frozen_paths(),
        config=config,
        wheelhouse=config["archive"]["wheelhouse"],
        code=code("freeze"),
    script:
        "../scripts/stages/freeze.py"
