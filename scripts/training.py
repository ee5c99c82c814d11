"""Fine-tuning the student on a data stream: SFT or DFT, full or LoRA, through TRL's SFTTrainer.

- Completion-only loss: the prompt (problem) tokens carry no loss; TRL appends EOS to each
  completion so the fine-tuned student learns where to stop.
- DFT (Dynamic Fine-Tuning, arXiv 2508.05629) is TRL's ``loss_type="dft"``: each completion
  token's cross-entropy weighted by its own detached probability.
- ``batch_size`` is the *effective* batch: per-device micro-batches times gradient
  accumulation times devices, so the paper's batch sizes hold on any number of GPUs.
"""


import copy
import csv
import math
import os
import tempfile
from pathlib import Path

from scripts.records import read_json, read_jsonl, write_json
from scripts.stage import StageError, logged

LOSS_TYPE = {"sft": "nll", "dft": "dft"}


def accumulation_steps(batch_size: int, micro_batch_size: int, world_size: int = 1) -> int:
    per_step = micro_batch_size * world_size
    if batch_size % per_step:
        raise StageError(f"batch_size {batch_size} is not a multiple of micro_batch_size x devices ({per_step})")
    return batch_size // per_step


def sft_trainer(model, tokenizer, examples: list[dict], hp: dict, objective: str, output_dir: str,
                seed: int, eos_token: str | None = None):
    """TRL's SFTTrainer for prompt/completion ``examples``: loss on completion tokens only, each
    completion ending with ``eos_token`` (default: the tokenizer's EOS), so the student learns to
    stop there."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if objective not in LOSS_TYPE:
        raise StageError(f"unknown objective {objective!r}; expected one of {sorted(LOSS_TYPE)}")
    if not examples:
        raise StageError("no training examples")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    micro = min(hp["micro_batch_size"], hp["batch_size"])
    cuda = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=output_dir,
        loss_type=LOSS_TYPE[objective],
        completion_only_loss=True,
        learning_rate=hp["lr"],
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation_steps(hp["batch_size"], micro, world),
        num_train_epochs=hp["epochs"],
        max_steps=hp["max_steps"] or -1,
        lr_scheduler_type=hp["lr_scheduler"],
        warmup_steps=hp["warmup_ratio"],  # a float below 1 is a ratio of the total steps
        weight_decay=hp["weight_decay"],
        max_length=hp["max_length"],
        bf16=cuda and hp["bf16"],
        use_cpu=not cuda,
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
        eos_token=eos_token,
    )
    data = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
    # TRL makes eos_token the tokenizer's EOS: a copy keeps the student's own tokenizer (saved
    # with the checkpoint) unchanged, so generation stops at its EOS and its stop tokens alike.
    processing = copy.deepcopy(tokenizer) if eos_token else tokenizer
    return SFTTrainer(model=model, args=args, train_dataset=data, processing_class=processing)


def fit(model, tokenizer, examples: list[dict], hp: dict, objective: str, output_dir: str,
        seed: int, eos_token: str | None = None) -> list[dict]:
    """Train ``model`` in place (see ``sft_trainer``); return the loss curve."""
    trainer = sft_trainer(model, tokenizer, examples, hp, objective, output_dir, seed, eos_token)
    trainer.train()
    curve = [{"step": h["step"], "loss": h["loss"], "lr": h.get("learning_rate", math.nan)}
             for h in trainer.state.log_history if "loss" in h]
    return curve


def with_lora(model, lora: dict):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                     target_modules=lora["target_modules"], task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def write_curve(path: str | Path, curve: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["step", "loss", "lr"])
        w.writeheader()
        w.writerows(curve)


def main(snakemake) -> None:
    from scripts.student import load_student

    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params
        w = snakemake.wildcards
        hp = {**p.hparams, "lr": float(w.lr), "batch_size": int(w.batch_size), "epochs": float(w.epochs)}
        seed = int(snakemake.wildcards.seed)
        student = read_json(snakemake.input.student)
        model, tokenizer = load_student(student, seed=seed)
        stream = read_jsonl(snakemake.input.stream)
        template = student["prompt_template"]
        examples = [{"prompt": template.format(problem=r["problem"]), "completion": r["trace"]} for r in stream]
        if p.method == "lora":
            model = with_lora(model, p.lora)
        out = Path(snakemake.output.checkpoint)
        with tempfile.TemporaryDirectory() as scratch:  # trainer state; only the model is kept
            # A chat-templated student ends its turn with its first stop token (e.g. <|im_end|>).
            eos = (student.get("stop_tokens") or [None])[0]
            curve = fit(model, tokenizer, examples, hp, snakemake.wildcards.objective, scratch, seed, eos)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        write_curve(snakemake.output.curve, curve)
        write_json(snakemake.output.summary, {
            "method": p.method, "objective": snakemake.wildcards.objective, "seed": seed, **hp,
            "n_examples": len(examples), "steps": len(curve),
            "final_loss": curve[-1]["loss"] if curve else None,
            "base": student["path"],
        })


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
