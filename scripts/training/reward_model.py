"""An outcome reward model trained on the student's own native traces: the student's weights under a
one-label head (``AutoModelForSequenceClassification``), trained with TRL's ``RewardTrainer`` on
(correct, incorrect) pairs of native traces of one problem, labelled by rejection sampling. What
it scores is what the sequence-classifier reward backend renders with ``prompt_format: plain``:
the student's prompt followed by the trace."""

import math

from scripts.infrastructure.stage_log import StageError


def preference_pairs(
    problems: list[dict], traces: list[dict], verdicts: list[dict], template: str, per_problem: int
) -> list[dict]:
    """``{prompt, chosen, rejected}`` per problem that has both a correct and an incorrect finished
    trace: up to ``per_problem`` pairs, the first correct and incorrect traces in sample order."""
    text = {(t["id"], t["sample"]): t["trace"] for t in traces}
    by_problem: dict[str, dict[str, list[str]]] = {}
    for v in verdicts:
        if v["reason"] == "unfinished":
            continue
        by_problem.setdefault(v["id"], {"correct": [], "wrong": []})["correct" if v["correct"] else "wrong"].append(
            text[v["id"], v["sample"]]
        )
    pairs = []
    for p in problems:
        got = by_problem.get(p["id"])
        if not got:
            continue
        for good, bad in list(zip(got["correct"], got["wrong"]))[:per_problem]:
            pairs.append({"prompt": template.format(problem=p["problem"]), "chosen": good, "rejected": bad})
    return pairs


def train_outcome_reward_model(student_path: str, pairs: list[dict], hp: dict, output_dir: str) -> list[dict]:
    """Train and save the reward model in ``output_dir``; returns the loss curve."""
    import tempfile

    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    if not pairs:
        raise StageError(
            "no problem has both a correct and an incorrect native trace: nothing to train the outcome "
            "reward model on (rewards.<name>.trained_on)"
        )
    tokenizer = AutoTokenizer.from_pretrained(student_path)
    torch.manual_seed(hp["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(student_path, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as scratch:
        args = RewardConfig(
            output_dir=scratch,
            learning_rate=hp["lr"],
            num_train_epochs=hp["epochs"],
            per_device_train_batch_size=hp["batch_size"],
            max_length=hp["max_length"],
            seed=hp["seed"],
            data_seed=hp["seed"],
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=not cuda,
            bf16=False,
            dataloader_num_workers=0,
            disable_tqdm=False,
        )
        trainer = RewardTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer
        )
        trainer.train()
    trainer.model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return [
        {"step": h["step"], "loss": h["loss"], "lr": h.get("learning_rate", math.nan)}
        for h in trainer.state.log_history
        if "loss" in h
    ]
