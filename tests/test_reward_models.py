"""Learned reward models (scripts/reward_models.py) on small randomly initialised models of each
architecture, built and saved offline with the built-in student's tokenizer."""

import copy
import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from scripts.backends.rewards import learned as rms
from scripts.backends.rewards import reward_model
from scripts.infrastructure.records import write_jsonl
from scripts.infrastructure.stage_log import StageError
from scripts.organism import word_problems as wp

from conftest import run_stage

CHAT = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def save_model(folder: Path, student_path: str, kind: str, *, chat=True, step_token=False, labels=1, seed=0):
    """A tiny random Qwen2 reward model of `kind` (seq: *ForSequenceClassification, score: the
    Qwen2.5-Math head, token: *ForTokenClassification, lm: a plain causal LM) with a tokenizer."""
    from transformers import (
        AutoTokenizer,
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen2ForSequenceClassification,
        Qwen2ForTokenClassification,
    )

    tok = AutoTokenizer.from_pretrained(student_path)
    if step_token:
        tok.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
    if chat:
        tok.chat_template = CHAT
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
        initializer_range=0.3,
        num_labels=labels,
    )
    cls = {
        "seq": Qwen2ForSequenceClassification,
        "score": rms.Qwen2MathScoreModel,
        "token": Qwen2ForTokenClassification,
        "lm": Qwen2ForCausalLM,
    }[kind]
    torch.manual_seed(seed)
    cls(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def models(tiny_student, tmp_path_factory):
    root = tmp_path_factory.mktemp("reward_models")
    s = tiny_student["path"]
    return {
        "seq": save_model(root / "seq", s, "seq"),
        "outcome": save_model(root / "outcome", s, "score"),
        "prm": save_model(root / "prm", s, "score", step_token=True, labels=2),
        "prm_token": save_model(root / "prm_token", s, "token", step_token=True, labels=2),
        "plain": save_model(root / "plain", s, "seq", chat=False),
        "two_labels": save_model(root / "two_labels", s, "seq", labels=2),
        "lm": save_model(root / "lm", s, "lm"),
    }


def items(n=7):
    rng = random.Random(3)
    out = []
    for i in range(n):
        g = wp.sample_graph(rng, rng.randint(2, 4), 60)
        trace = wp.native_solution(g, random.Random(i), slip=0.3)
        if i % 2:  # blank lines between steps, as the PRM card's step split expects
            trace = trace.replace("\n", "\n\n")
        out.append(
            {"id": str(i), "problem": wp.problem_text(g), "answer": str(g.answer), "trace": trace, "graph": g.to_json()}
        )
    return out


def spec(backend, model, **kw):
    return {"backend": backend, "model": model, "batch_size": 4, **kw}


def test_sequence_classifier_scores_as_its_model_card_in_batches_as_one_at_a_time(models):
    its = items()
    rm = reward_model(spec("sequence_classifier", models["seq"]), "skywork")
    batched = rm.score(its)
    single = reward_model(spec("sequence_classifier", models["seq"], batch_size=1), "skywork").score(its)
    assert batched == pytest.approx(single, abs=1e-5)
    assert len({round(s, 4) for s in batched}) > 1  # the score depends on the trace
    assert reward_model(spec("sequence_classifier", models["seq"]), "skywork").score(its) == batched  # repeatable
    # the model card's way: chat template, one conversation, the pooled logit
    tok, model = rm.tokenizer, rm.model
    for it, s in zip(its, batched):
        text = tok.apply_chat_template(
            [{"role": "user", "content": it["problem"]}, {"role": "assistant", "content": it["trace"]}], tokenize=False
        )
        with torch.no_grad():
            direct = model(input_ids=torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])).logits[0][0]
        assert s == pytest.approx(direct.item(), abs=1e-5)
    assert rm.info["tokens"] == sum(d["tokens"] for d in rm.details) and rm.info["truncated"] == 0


def test_outcome_reward_reads_its_scalar_head_at_the_last_token(models):
    its = items()
    rm = reward_model(spec("outcome_reward", models["outcome"], system_prompt="Reason step by step."), "qwen_rm")
    batched = rm.score(its)
    single = reward_model(
        spec("outcome_reward", models["outcome"], system_prompt="Reason step by step.", batch_size=1), "qwen_rm"
    ).score(its)
    assert batched == pytest.approx(single, abs=1e-5) and len({round(s, 4) for s in batched}) > 1
    for it, s in zip(its, batched):
        ids = rm.tokenizer(rm.render(it), add_special_tokens=False)["input_ids"]
        assert rm.render(it).startswith("system: Reason step by step.\nuser: ")
        with torch.no_grad():
            direct = rm.model(torch.tensor([ids]))[0, -1, 0]
        assert s == pytest.approx(direct.item(), abs=1e-5)


@pytest.mark.parametrize("model", ["prm", "prm_token"])
def test_process_reward_scores_each_step_at_its_separator_and_aggregates(models, model):
    its = items()
    head = {"prm": "qwen2_math", "prm_token": "token_classifier"}[model]
    rm = reward_model(spec("process_reward", models[model], head=head), "prm")
    rewards = rm.score(its)
    single = reward_model(spec("process_reward", models[model], head=head, batch_size=1), "prm").score(its)
    assert rewards == pytest.approx(single, abs=1e-5)
    for it, r, d in zip(its, rewards, rm.details):
        steps = [s for s in it["trace"].split("\n\n") if s.strip()]
        assert len(d["step_rewards"]) == len(steps) and all(0 < p < 1 for p in d["step_rewards"])
        assert r == min(d["step_rewards"])
    assert any(len(d["step_rewards"]) > 1 for d in rm.details)
    for rule, f in (("mean", lambda p: sum(p) / len(p)), ("last", lambda p: p[-1]), ("prod", math.prod)):
        other = reward_model(spec("process_reward", models[model], head=head, aggregate=rule), "prm")
        assert other.score(its) == pytest.approx([f(d["step_rewards"]) for d in rm.details], abs=1e-6)


def test_truncation_keeps_the_first_max_length_tokens_and_is_counted(models):
    its = items()
    full = reward_model(spec("sequence_classifier", models["seq"]), "rm")
    full.score(its)
    limit = sorted(d["tokens"] for d in full.details)[3]
    rm = reward_model(spec("sequence_classifier", models["seq"], max_length=limit), "rm")
    rm.score(its)
    assert rm.info["truncated"] == sum(d["tokens"] > limit for d in full.details) > 0
    assert [d["truncated"] for d in rm.details] == [d["tokens"] > limit for d in full.details]
    assert all(d["tokens"] == min(f["tokens"], limit) for d, f in zip(rm.details, full.details))
    assert rm.info["truncation"] == "right" and rm.info["max_length"] == limit


def test_plain_prompt_format_scores_tokenizers_without_a_chat_template(models):
    its = items(3)
    rm = reward_model(spec("sequence_classifier", models["plain"], prompt_format="plain"), "rm")
    assert rm.render(its[0]) == f"Problem: {its[0]['problem']}\nSolution:\n{its[0]['trace']}"
    assert all(math.isfinite(s) for s in rm.score(its))


class Params(dict):
    __getattr__ = dict.__getitem__


def run_reward_stage(tmp_path, name, reward_spec, stream_path, solvable_path):
    out = tmp_path / "scores" / name
    snakemake = SimpleNamespace(
        input=SimpleNamespace(stream=str(stream_path), solvable=str(solvable_path)),
        output=SimpleNamespace(scores=f"{out}.jsonl", summary=f"{out}.json"),
        log=[str(tmp_path / "logs" / f"{name}.log")],
        threads=1,
        params=Params(spec=reward_spec, replay=None),
        wildcards=SimpleNamespace(stream="slm_rft", reward=name),
    )
    run_stage("reward_scores", snakemake)
    return json.loads(Path(f"{out}.json").read_text()), [json.loads(x) for x in open(f"{out}.jsonl")]


def test_several_reward_models_per_run_each_write_their_own_summary(models, tmp_path):
    its = items()
    stream, solvable = tmp_path / "stream.jsonl", tmp_path / "solvable.jsonl"
    write_jsonl(stream, [{k: it[k] for k in ("id", "problem", "answer", "trace")} for it in its])
    write_jsonl(solvable, [{"id": it["id"], "graph": it["graph"]} for it in its])
    specs = {
        "process": {"backend": "builtin"},
        "skywork": spec("sequence_classifier", models["seq"], max_length=60),
        "qwen_prm": spec("process_reward", models["prm"]),
    }
    summaries = {}
    for name, s in specs.items():
        summary, scores = run_reward_stage(tmp_path, name, s, stream, solvable)
        summaries[name] = summary
        assert summary["reward_model"] == name and summary["backend"] == s["backend"]
        assert summary["n"] == len(its) and summary["ci95_low"] < summary["mean"] < summary["ci95_high"]
        assert [r["id"] for r in scores] == [it["id"] for it in its]
        assert summary["mean"] == pytest.approx(sum(r["reward"] for r in scores) / len(scores))
        assert "tokens_per_s" not in summary  # timing varies: the log has it, the artifact stays reproducible
    assert summaries["skywork"]["truncated"] > 0 and summaries["skywork"]["max_length"] == 60
    assert summaries["qwen_prm"]["truncated"] == 0 and summaries["qwen_prm"]["tokens"] > 0
    assert "throughput:" in (tmp_path / "logs" / "qwen_prm.log").read_text()
    assert len({s["mean"] for s in summaries.values()}) == 3


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda m: {"backend": "outcome_reward"}, "rewards.rm.model"),
        (lambda m: {"backend": "reward_model_9000", "model": m["seq"]}, "rewards.rm.backend"),
        (lambda m: spec("sequence_classifier", m["seq"], modle="x"), "rewards.rm: unknown key"),
        (lambda m: spec("sequence_classifier", m["plain"]), "rewards.rm.prompt_format"),
        (lambda m: spec("sequence_classifier", m["two_labels"]), "rewards.rm.model"),
        (lambda m: spec("process_reward", m["prm"], step_token="<step>"), "rewards.rm.step_token"),
        (lambda m: spec("process_reward", m["prm"], aggregate="median"), "rewards.rm.aggregate"),
        (lambda m: spec("outcome_reward", m["lm"]), "rewards.rm.model"),
        (lambda m: spec("sequence_classifier", m["seq"], batch_size=0), "rewards.rm.batch_size"),
        (lambda m: spec("sequence_classifier", m["seq"], user_template="{question}"), "rewards.rm.user_template"),
    ],
)
def test_a_bad_reward_spec_fails_naming_the_key(models, change, key):
    with pytest.raises(StageError, match=key.replace(".", r"\.")):
        reward_model(change(models), "rm")


def test_an_outcome_head_missing_from_the_checkpoint_is_refused_not_randomly_initialised(models):
    with pytest.raises(StageError, match=r"score\.0"):
        reward_model(spec("outcome_reward", models["lm"]), "rm")


def schema():
    return yaml.safe_load(open("schemas/config.schema.yaml"))


def test_the_schema_states_the_backends_defaults():
    props = schema()["properties"]["rewards"]["additionalProperties"]["properties"]
    assert {k: v["default"] for k, v in props.items() if k != "backend"} == rms.DEFAULTS


def test_a_config_with_a_learned_reward_model_but_no_model_fails_validation_naming_it():
    from snakemake.utils import validate

    config = yaml.safe_load(open("config.yaml"))
    ok = copy.deepcopy(config)
    ok["rewards"]["skywork"] = {
        "backend": "sequence_classifier",
        "model": "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2",
        "revision": "0123456789abcdef0123456789abcdef01234567",
    }
    validate(ok, "schemas/config.schema.yaml")
    assert ok["rewards"]["skywork"]["max_length"] == 4096 and ok["rewards"]["process"]["backend"] == "builtin"
    bad = copy.deepcopy(config)
    bad["rewards"]["skywork"] = {"backend": "sequence_classifier"}
    with pytest.raises(Exception, match=r"\['rewards'\]\['skywork'\]\['model'\]"):
        validate(bad, "schemas/config.schema.yaml")
