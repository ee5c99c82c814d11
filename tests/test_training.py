import copy
import re

import pytest
import torch

from scripts.backends.models import load_student
from scripts.infrastructure.stage_log import StageError
from scripts.training.trainer import accumulation_steps, fit, sft_trainer

HP = {
    "lr": 1e-3,
    "batch_size": 4,
    "micro_batch_size": 2,
    "epochs": 1,
    "max_steps": 3,
    "lr_scheduler": "cosine",
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "max_length": 128,
    "bf16": False,
}
EXAMPLES = [
    {
        "prompt": f"Problem: Ana has {i} coins.\nSolution:\n",
        "completion": f"Ana starts with {i} coins.\nThe answer is \\boxed{{{i}}}.",
    }
    for i in range(2, 10)
]


def first_batch_loss(model, tokenizer, objective):
    """TRL's loss on one collated batch, and the same loss computed by hand from the logits."""
    trainer = sft_trainer(
        model,
        tokenizer,
        EXAMPLES[:4],
        {**HP, "batch_size": 4, "micro_batch_size": 4},
        objective,
        "/tmp/unused-dft-test",
        seed=0,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    model.eval()  # no dropout: the hand computation must see the same forward pass
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, dict(batch)).item()
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    logp = torch.log_softmax(logits[:, :-1].double(), -1).gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    nll = -logp[mask]
    weight = logp[mask].exp() if objective == "dft" else torch.ones_like(nll)
    return trl_loss, (nll * weight).sum().item() / mask.sum().item(), batch


@pytest.mark.parametrize("objective", ["sft", "dft"])
def test_loss_matches_a_hand_computed_value_on_completion_tokens_only(tiny_student, objective):
    model, tokenizer = load_student(tiny_student, seed=0)
    trl_loss, hand, batch = first_batch_loss(model, tokenizer, objective)
    assert trl_loss == pytest.approx(hand, rel=1e-4)
    # Prompt tokens carry no loss; the completion ends with EOS, which does.
    prompt_len = len(tokenizer(EXAMPLES[0]["prompt"])["input_ids"])
    assert (batch["labels"][0, :prompt_len] == -100).all()
    assert tokenizer.eos_token_id in batch["labels"][0].tolist()


def test_dft_weights_each_token_by_its_own_probability(tiny_student):
    model, tokenizer = load_student(tiny_student, seed=0)
    sft, _, _ = first_batch_loss(model, tokenizer, "sft")
    dft, _, _ = first_batch_loss(model, tokenizer, "dft")
    assert 0 < dft < sft  # weights are probabilities below 1


def test_full_fine_tuning_changes_the_model_and_logs_a_loss_per_step(tiny_student, tmp_path):
    model, tokenizer = load_student(tiny_student, seed=0)
    before = copy.deepcopy(model.state_dict())
    model, curve = fit(model, tokenizer, EXAMPLES, HP, "dft", str(tmp_path), seed=0)
    assert [c["step"] for c in curve] == [1, 2, 3]
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_lora_through_trls_peft_config_trains_only_the_adapter(tiny_student, tmp_path):
    model, tokenizer = load_student(tiny_student, seed=0)
    # each base weight under the name peft gives it (targeted layers become <layer>.base_layer)
    frozen = {
        "base_model.model." + re.sub(r"\.(q_proj|v_proj)\.", r".\1.base_layer.", k): v.clone()
        for k, v in model.named_parameters()
    }
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    model, _ = fit(model, tokenizer, EXAMPLES, HP, "sft", str(tmp_path), seed=0, lora=lora)
    trained = dict(model.named_parameters())
    assert {k for k in trained if "lora_" in k}, "no adapter"
    assert all(torch.equal(frozen[k], v) for k, v in trained.items() if k in frozen)
    assert len([k for k in trained if k in frozen]) == len(frozen)  # every base weight is there, untouched
    assert any(not torch.all(v == 0) for k, v in trained.items() if "lora_B" in k)  # B starts at 0: it learned
    model.save_pretrained(tmp_path / "adapter")
    config = (tmp_path / "adapter" / "adapter_config.json").read_text()
    assert '"r": 4' in config and "q_proj" in config
    # Evaluation samples from base + adapter without merging.
    from scripts.backends.generation import generator

    gen = generator("transformers", tiny_student, adapter=str(tmp_path / "adapter"), batch_size=4)
    assert len(gen.sample([EXAMPLES[0]["prompt"]], 2, 1.0, 10, seed=0)[0]) == 2


def test_seeded_training_is_repeatable(tiny_student, tmp_path):
    curves = []
    for _ in range(2):
        model, tokenizer = load_student(tiny_student, seed=0)
        curves.append(fit(model, tokenizer, EXAMPLES, HP, "sft", str(tmp_path), seed=3)[1])
    assert curves[0] == curves[1]


def test_effective_batch_size_is_kept_by_gradient_accumulation():
    assert accumulation_steps(256, 8, world_size=4) == 8
    with pytest.raises(StageError, match="multiple"):
        accumulation_steps(100, 8)


def test_a_chat_templated_student_learns_to_end_its_turn_with_its_stop_token(tiny_student):
    # students.<name>.stop_tokens[0] is passed as eos_token: every completion's last labelled
    # token is that token, not the tokenizer's EOS. (The built-in tokenizer has no <|im_end|>:
    # a word token whose text is itself stands in for it.)
    model, tokenizer = load_student(tiny_student, seed=0)
    eos = tokenizer.eos_token
    word = next(
        t
        for t in sorted(tokenizer.get_vocab())
        if t.isascii()
        and t.isalpha()
        and len(t) >= 3
        and tokenizer(t)["input_ids"] == [tokenizer.convert_tokens_to_ids(t)]
    )
    stop = [tokenizer.convert_tokens_to_ids(word)]
    trainer = sft_trainer(
        model,
        tokenizer,
        EXAMPLES[:4],
        {**HP, "batch_size": 4, "micro_batch_size": 4},
        "sft",
        "/tmp/unused-eos-test",
        seed=0,
        eos_token=word,
    )
    batch = next(iter(trainer.get_train_dataloader()))
    for labels in batch["labels"].tolist():
        kept = [t for t in labels if t != -100]
        assert kept[-1] == stop[0] and tokenizer.eos_token_id not in kept
    assert tokenizer.eos_token == eos, "the student's own tokenizer (saved with the checkpoint) keeps its EOS"
