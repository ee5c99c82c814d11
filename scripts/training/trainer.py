"""Training the student with TRL's SFTTrainer: fine-tuning on a data stream (SFT or DFT, full or
LoRA) and the built-in student's pretraining alike.

- Completion-only loss: the prompt (problem) tokens carry no loss; TRL appends EOS (or the
  student's first stop token) to each completion so the student learns where to stop.
- DFT (Dynamic Fine-Tuning, arXiv 2508.05629) is TRL's ``loss_type="dft"``: each completion
  token's cross-entropy weighted by its own detached probability.
- LoRA is TRL's own: a ``peft`` ``LoraConfig`` passed as ``peft_config``.
- ``batch_size`` is the *effective* batch: per-device micro-batches times gradient
  accumulation times devices, so the paper's batch sizes hold on any number of GPUs.
"""

import copy
import math
import os

from scripts.infrastructure.stage_log import StageError

LOSS_TYPE = {"sft": "nll", "dft": "dft"}


def accumulation_steps(batch_size: int, micro_batch_size: int, world_size: int = 1) -> int:
    per_step = micro_batch_size * world_size
    if batch_size % per_step:
        raise StageError(f"batch_size {batch_size} is not a multiple of micro_batch_size x devices ({per_step})")
    return batch_size // per_step


def lora_config(lora: dict):
    from peft import LoraConfig

    return LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=lora["target_modules"],
        task_type="CAUSAL_LM",
    )


def sft_trainer(
    model,
    tokenizer,
    examples: list[dict],
    hp: dict,
    objective: str,
    output_dir: str,
    seed: int,
    eos_token: str | None = None,
    lora: dict | None = None,
):
    """TRL's SFTTrainer for prompt/completion ``examples``: loss on completion tokens only, each
    completion ending with ``eos_token`` (default: the tokenizer's EOS), so the student learns to
    stop there; with ``lora`` (the config's ``training.lora``) only a LoRA adapter trains."""
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
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=processing,
        peft_config=lora_config(lora) if lora else None,
    )


def fit(
    model,
    tokenizer,
    examples: list[dict],
    hp: dict,
    objective: str,
    output_dir: str,
    seed: int,
    eos_token: str | None = None,
    lora: dict | None = None,
):
    """Train (see ``sft_trainer``); returns the trained model (with LoRA: the adapter-wrapped
    model) and the loss curve, one ``{step, loss, lr}`` per optimiser step."""
    trainer = sft_trainer(model, tokenizer, examples, hp, objective, output_dir, seed, eos_token, lora)
    trainer.train()
    curve = [
        {"step": h["step"], "loss": h["loss"], "lr": h.get("learning_rate", math.nan)}
        for h in trainer.state.log_history
        if "loss" in h
    ]
    return trainer.model, curve
