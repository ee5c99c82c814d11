"""Rule ``fine_tune``: the student trained on one stream -- SFT or DFT, full or LoRA -- at one
point of the lr x batch size x epochs x seed grid (``scripts.training``). Only the model is kept
(and, for LoRA, only the adapter).

The job's resources decide how many processes train (GPUs per node x nodes, see
``scripts.training.launch``): one trains here, several are started by the launcher. Checkpoints
go to ``results/training_state/<run>/``, which is no output of the rule, so a failed or killed
job leaves them for its rerun to resume from; a finished run removes them."""

import shutil
import sys
from pathlib import Path

from scripts.infrastructure.records import read_json
from scripts.infrastructure.stage_log import StageError, logged
from scripts.training import launch, worker


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p, w = snakemake.params, snakemake.wildcards
        hp = {**p.hparams, "lr": float(w.lr), "batch_size": int(w.batch_size), "epochs": float(w.epochs)}
        per_node, nodes = launch.world_size(snakemake.resources)
        world = per_node * nodes
        launch.check_batch(hp, world)  # fails here, before any process starts
        student = read_json(snakemake.input.student)
        spec = {
            "student": student,
            "stream": snakemake.input.stream,
            "hp": hp,
            "objective": w.objective,
            "seed": int(w.seed),
            "method": p.method,
            "lora": p.lora,
            # A chat-templated student ends its turn with its first stop token (e.g. <|im_end|>).
            "eos_token": (student.get("stop_tokens") or [None])[0],
            "strategy": launch.strategy(p.method, world),
            "world_size": world,
            "checkpoint_steps": p.checkpoint_steps,
            "state_dir": p.state,
            "outputs": {k: str(getattr(snakemake.output, k)) for k in ("checkpoint", "curve", "summary")},
        }
        stamp = launch.prepare_state(spec)
        print(f"training {w.objective} ({p.method}) on {world} process(es), strategy {spec['strategy'] or 'single'}")
        if world == 1:
            worker.run(spec)
        else:
            code = launch.launch(str(stamp), per_node, nodes, sys.stdout)  # the job's log
            stopped = Path(p.state) / launch.PREEMPTED
            if stopped.exists():
                raise StageError(read_json(stopped)["message"])
            if code != 0 or not Path(spec["outputs"]["summary"]).exists():
                raise StageError(f"the training processes failed (launcher exit code {code}); see the log above")
        shutil.rmtree(p.state)  # finished: the checkpoints are no longer needed


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
