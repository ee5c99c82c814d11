"""One fine-tuning run, in each training process: the ``fine_tune`` stage calls ``run`` itself
when the job has one process, and the launcher (``scripts.training.launch``) starts
``python -m scripts.training.worker <run.json>`` once per process otherwise. Every process trains
its share; the first one writes the outputs (the model or LoRA adapter with the student's
tokenizer, the loss curve, the summary)."""

import json
import os
import sys
from pathlib import Path

from scripts.backends.models import load_student
from scripts.infrastructure.records import read_jsonl, write_csv, write_json
from scripts.training.launch import PREEMPTED
from scripts.training.trainer import Preempted, loss_curve, sft_trainer, train

# A file the Trainer writes next to the weights: pickled arguments (paths, a timestamped
# logging dir), which would make checkpoints of identical runs differ byte for byte.
TRAINER_ARGS = "training_args.bin"


def examples(spec: dict) -> list[dict]:
    template = spec["student"]["prompt_template"]
    return [
        {"prompt": template.format(problem=r["problem"]), "completion": r["trace"]} for r in read_jsonl(spec["stream"])
    ]


def run(spec: dict) -> dict:
    """Train one run as ``spec`` (the stage's run.json) says, resuming from its state folder;
    returns the summary (first process) or None."""
    student, hp, out = spec["student"], spec["hp"], spec["outputs"]
    model, tokenizer = load_student(student, seed=spec["seed"])
    data = examples(spec)
    trainer = sft_trainer(
        model,
        tokenizer,
        data,
        hp,
        spec["objective"],
        spec["state_dir"],
        spec["seed"],
        spec["eos_token"],
        lora=spec["lora"] if spec["method"] == "lora" else None,
        strategy=spec["strategy"],
        checkpoint_steps=spec["checkpoint_steps"],
    )
    first = trainer.is_world_process_zero()
    try:
        info = train(trainer, resume=True)
    except Preempted as e:
        if first:
            write_json(Path(spec["state_dir"]) / PREEMPTED, {"step": trainer.state.global_step, "message": str(e)})
        raise
    trainer.save_model(out["checkpoint"])  # every process: FSDP gathers the shards
    if not first:
        return None
    (Path(out["checkpoint"]) / TRAINER_ARGS).unlink(missing_ok=True)
    tokenizer.save_pretrained(out["checkpoint"])
    curve = loss_curve(trainer)
    write_csv(out["curve"], curve, ["step", "loss", "lr"])
    summary = {
        "method": spec["method"],
        "objective": spec["objective"],
        "seed": spec["seed"],
        **hp,
        "n_examples": len(data),
        "steps": len(curve),
        "final_loss": curve[-1]["loss"] if curve else None,
        "base": student["path"],
        **info,
    }
    write_json(out["summary"], summary)
    if info["resumed_from"] is not None:
        print(f"resumed from the checkpoint of step {info['resumed_from']}")
    return summary


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())["spec"]
    try:
        run(spec)
    except Preempted as e:
        print(f"rank {os.environ.get('RANK', 0)}: {e}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: try again
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
