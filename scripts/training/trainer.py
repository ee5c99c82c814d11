"""Training the student with TRL's SFTTrainer: fine-tuning on a data stream (SFT or DFT, full or
LoRA) and the built-in student's pretraining alike.

- Completion-only loss: the prompt (problem) tokens carry no loss; TRL appends EOS (or the
  student's first stop token) to each completion so the student learns where to stop.
- DFT (Dynamic Fine-Tuning, arXiv 2508.05629) is TRL's ``loss_type="dft"``: each completion
  token's cross-entropy weighted by its own detached probability.
- LoRA is TRL's own: a ``peft`` ``LoraConfig`` passed as ``peft_config``.
- ``batch_size`` is the *effective* batch: per-device micro-batches times gradient
  accumulation times devices, so the paper's batch sizes hold on any number of GPUs.
- Several processes (``torchrun``, see ``scripts.training.launch``): the Trainer reads the
  launcher's environment; ``strategy="fsdp"`` shards parameters, gradients and optimizer state
  (FSDP2, full shard), otherwise the processes replicate the model (DDP).
- Preemption: with ``checkpoint_dir`` the Trainer checkpoints there every ``checkpoint_steps``
  optimiser steps (model, optimizer, scheduler, RNG states; the data order follows from the
  seed and the epoch) and a run resumes from the last checkpoint it finds. SIGTERM (what SLURM
  sends before the time limit, see profiles/slurm) makes every process save once more at the
  end of the current step and stop: ``train`` then raises ``Preempted``.
"""

import copy
import math
import os
import signal

from scripts.infrastructure.stage_log import StageError

LOSS_TYPE = {"sft": "nll", "dft": "dft"}
STRATEGIES = ("ddp", "fsdp")
# FSDP2 through accelerate's plugin: every decoder layer its own shard unit (the model's
# _no_split_modules), parameters resharded after the forward pass (ZeRO-3 style), and a full
# (unsharded) state dict on save, so a checkpoint loads like any other model folder.
FSDP_CONFIG = {
    "version": 2,
    "reshard_after_forward": True,
    "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
    "state_dict_type": "FULL_STATE_DICT",
}


class Preempted(StageError):
    """Training stopped on a signal after saving a checkpoint; a rerun resumes from it."""


def accumulation_steps(batch_size: int, micro_batch_size: int, world_size: int = 1) -> int:
    per_step = micro_batch_size * world_size
    if batch_size % per_step:
        raise StageError(
            f"batch_size {batch_size} is not a multiple of micro_batch_size x devices "
            f"({micro_batch_size} x {world_size} = {per_step})"
        )
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


def _stop_on_signal_callback():
    """A TrainerCallback that turns SIGTERM into "save a checkpoint at the end of this step and
    stop". Every process decides together (a max over processes), so all of them save the same
    step, as FSDP's collective save needs."""
    import torch
    import torch.distributed as dist
    from transformers import TrainerCallback

    class StopOnSignal(TrainerCallback):
        def __init__(self):
            self.requested = False
            self.stopped_at = None
            try:
                self.previous = signal.signal(signal.SIGTERM, self.request)
            except ValueError:  # not the main thread: signals cannot be caught here
                self.previous = None

        def request(self, signum, frame):
            self.requested = True

        def restore(self):
            if self.previous is not None:
                signal.signal(signal.SIGTERM, self.previous)

        def agreed(self) -> bool:
            if not (dist.is_available() and dist.is_initialized()):
                return self.requested
            device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else "cpu"
            flag = torch.tensor([int(self.requested)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            return bool(flag.item())

        def on_step_end(self, args, state, control, **kwargs):
            if self.agreed():
                self.stopped_at = state.global_step
                control.should_save = True
                control.should_training_stop = True
            return control

    return StopOnSignal()


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
    strategy: str | None = None,
    checkpoint_steps: int = 0,
):
    """TRL's SFTTrainer for prompt/completion ``examples``: loss on completion tokens only, each
    completion ending with ``eos_token`` (default: the tokenizer's EOS), so the student learns to
    stop there; with ``lora`` (the config's ``training.lora``) only a LoRA adapter trains.
    ``strategy`` (``ddp`` / ``fsdp``) applies when a launcher started several processes;
    ``checkpoint_steps`` > 0 saves a resumable checkpoint under ``output_dir`` that often."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if objective not in LOSS_TYPE:
        raise StageError(f"unknown objective {objective!r}; expected one of {sorted(LOSS_TYPE)}")
    if strategy is not None and strategy not in STRATEGIES:
        raise StageError(f"unknown training strategy {strategy!r}; expected one of {list(STRATEGIES)}")
    if not examples:
        raise StageError("no training examples")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    micro = min(hp["micro_batch_size"], hp["batch_size"])
    cuda = torch.cuda.is_available()
    sharded = world > 1 and strategy == "fsdp"
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
        activation_checkpointing=hp.get("activation_checkpointing", False),
        use_cpu=not cuda,
        seed=seed,
        data_seed=seed,
        logging_steps=1,
        save_strategy="steps" if checkpoint_steps else "no",
        save_steps=checkpoint_steps or 500,
        save_total_limit=1,  # the last checkpoint is all a resume needs
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
        eos_token=eos_token,
        fsdp=True if sharded else None,
        fsdp_config=dict(FSDP_CONFIG) if sharded else None,
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


def last_checkpoint(output_dir: str) -> str | None:
    """The newest complete ``checkpoint-<step>`` folder the Trainer wrote under ``output_dir``:
    one with its ``trainer_state.json``, which the Trainer writes last (a job killed while
    saving leaves a folder without it, and the checkpoint before it is still there)."""
    if not os.path.isdir(output_dir):
        return None
    steps = [
        int(name.removeprefix("checkpoint-"))
        for name in os.listdir(output_dir)
        if name.startswith("checkpoint-")
        and name.removeprefix("checkpoint-").isdigit()
        and os.path.isfile(os.path.join(output_dir, name, "trainer_state.json"))
    ]
    return os.path.join(output_dir, f"checkpoint-{max(steps)}") if steps else None


def loss_curve(trainer) -> list[dict]:
    """One ``{step, loss, lr}`` per optimiser step (a resumed run keeps the steps before it)."""
    return [
        {"step": h["step"], "loss": h["loss"], "lr": h.get("learning_rate", math.nan)}
        for h in trainer.state.log_history
        if "loss" in h
    ]


def train(trainer, resume: bool = False) -> dict:
    """Run ``trainer``, from its last checkpoint when ``resume`` and there is one. Returns what
    happened (``resumed_from``: the checkpoint's step or None; ``strategy``: what accelerate
    ran). Raises ``Preempted`` when a signal stopped it after a checkpoint was saved."""
    start = last_checkpoint(trainer.args.output_dir) if resume else None
    stop = _stop_on_signal_callback()
    trainer.add_callback(stop)
    try:
        trainer.train(resume_from_checkpoint=start)
    finally:
        stop.restore()
    if stop.stopped_at is not None and trainer.state.global_step < trainer.state.max_steps:
        raise Preempted(
            f"stopped by a signal at step {stop.stopped_at} of {trainer.state.max_steps}; a checkpoint is "
            f"in {trainer.args.output_dir} and a rerun resumes from it"
        )
    return {
        "resumed_from": int(start.rsplit("-", 1)[1]) if start else None,
        "strategy": "fsdp" if trainer.is_fsdp_enabled else ("ddp" if trainer.args.world_size > 1 else "single"),
        "world_size": trainer.args.world_size,
    }


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
    train(trainer)
    return trainer.model, loss_curve(trainer)
