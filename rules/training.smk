# Fine-tuning the student on each stream: SFT or DFT, over the lr x batch size x seed grid.


rule fine_tune:
    input:
        student="results/student/{student}/student.json",
        stream="results/streams/{student}/{stream}.jsonl",
    output:
        checkpoint=directory(f"results/training/{RUN}/checkpoint"),
        curve=f"results/training/{RUN}/loss_curve.csv",
        summary=f"results/training/{RUN}/train.json",
    log:
        f"results/logs/training/{RUN}.log",
    conda:
        "../envs/training.yaml"
    threads: 1
    resources:
        gpu=res("training", "gpu"),
        mem_mb=by_attempt("training", "mem_mb"),
        runtime=by_attempt("training", "runtime"),
    params:
        method=config["training"]["method"],
        hparams=config["training"]["hparams"],
        lora=config["training"]["lora"],
        code=code("training.py"),
    script:
        "../scripts/training.py"
