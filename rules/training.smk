# Fine-tuning the student on each stream: SFT or DFT, over the lr x batch size x epochs x seed grid.
# GPUs x nodes of resources.training set how many processes train; checkpoints for a rerun of a
# killed job go to results/training_state/, which is no output (Snakemake deletes a failed job's).


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
        **stage_resources("training"),
    params:
        method=config["training"]["method"],
        hparams=config["training"]["hparams"],
        lora=config["training"]["lora"],
        checkpoint_steps=config["training"]["checkpoint_steps"],
        state=training_state,
        code=code("fine_tune"),
    script:
        "../scripts/stages/fine_tune.py"
