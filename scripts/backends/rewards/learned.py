"""Learned reward models through transformers, behind ``scripts.backends.rewards``' interface
(``reward_model(spec, name).score(items) -> list[float]``). Each backend scores a trace the way
its model card does, in length-sorted, right-padded batches, and also reports per trace
``details`` and for the run ``info`` (tokens scored, traces truncated, tokens per second).

- ``sequence_classifier`` (Skywork-Reward style): a ``*ForSequenceClassification`` checkpoint with
  one label. The conversation [user: problem, assistant: trace] is rendered with the tokenizer's
  chat template; the reward is the logit the model pools at its last non-padding token.
- ``outcome_reward`` (Qwen2.5-Math-RM-72B style): a Qwen2 decoder whose LM head is replaced by a
  scalar head, read at the last token of the rendered conversation (system prompt, problem,
  trace). The checkpoint's own class is remote code that current transformers cannot run, so
  the head is rebuilt here from what transformers offers: ``Qwen2Model`` under ``model.`` and
  ``score = Linear(h, h) -> ReLU -> Linear(h, 1)`` (both with bias) under ``score.`` -- the
  parameter layout of the published checkpoint as vLLM's port of it loads it. That layout is
  an assumption we could not check against the real weights offline; loading refuses a
  checkpoint that leaves any head weight uninitialised, so a wrong assumption fails loudly
  instead of scoring with random weights.
- ``process_reward`` (Qwen2.5-Math-PRM-7B style): the trace is split into steps (``step_split``,
  the card recommends a blank line), ``step_token`` (``<extra_0>``) is written after every step,
  and a two-label token head gives each step's reward: the probability of the positive label
  (label 1) at that step's separator. The trace's reward aggregates its step rewards by
  ``aggregate`` (min, mean, last or prod). ``head: qwen2_math`` is the PRM checkpoint's head
  (the MLP above with two labels); ``head: token_classifier`` any ``*ForTokenClassification``.

- ``token_logit`` (Llama-3.1-Nemotron-70B-Reward style): a causal LM whose reward is one
  vocabulary logit -- that of ``token_id`` (the card reads token 0) -- at the last token of the
  rendered conversation, where the model would write its first new token (the card generates
  one token and reads its score; this reads the same logit from one forward pass).

Truncation: a rendered text longer than ``max_length`` tokens keeps its first ``max_length``
tokens (the problem survives, the end of the trace does not); the summary counts such traces.
Batches are right-padded with an attention mask, so a causal model's outputs at real positions
do not depend on the padding, and a batch gives the scores of one-at-a-time scoring.
"""

import math
import time

import torch
from torch import nn
from tqdm import tqdm
from transformers import Qwen2Model, Qwen2PreTrainedModel

from scripts.backends.models import on_accelerator
from scripts.infrastructure.stage_log import StageError

# Defaults of a reward spec (schemas/config.schema.yaml states the same; a test checks they agree).
DEFAULTS = {
    "model": None,
    "revision": None,
    "dtype": "float32",
    "device_map": None,
    "batch_size": 8,
    "max_length": 4096,
    "prompt_format": "chat_template",
    "system_prompt": None,
    "user_template": "{problem}",
    "plain_template": "Problem: {problem}\nSolution:\n{trace}",
    "step_split": "\n\n",
    "step_token": "<extra_0>",
    "aggregate": "min",
    "head": "qwen2_math",
    "token_id": 0,
    "trained_on": None,
    "training": {"lr": 1.0e-4, "epochs": 2, "batch_size": 16, "pairs_per_problem": 2, "max_length": 256, "seed": 0},
}
DTYPES = ("float32", "bfloat16", "float16", "auto")
AGGREGATES = {
    "min": min,
    "mean": lambda p: sum(p) / len(p),
    "last": lambda p: p[-1],
    "prod": math.prod,
}


class Qwen2MathScoreModel(Qwen2PreTrainedModel):
    """A Qwen2 decoder with the Qwen2.5-Math reward head: ``[batch, tokens, num_labels]``
    scores at every position (num_labels 1: outcome reward; 2: process reward)."""

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        h = config.hidden_size
        self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, config.num_labels))
        self.post_init()

    def forward(self, input_ids, attention_mask=None):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return self.score(hidden)


class TransformersReward:
    """What the backends share: the spec, loading, rendering, truncation and batching."""

    task = ""

    def __init__(self, spec: dict, name: str = "reward"):
        self.name = name
        unknown = set(spec) - set(DEFAULTS) - {"backend"}
        if unknown:
            raise StageError(f"rewards.{name}: unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.spec = {**DEFAULTS, **spec}
        self.check_spec()
        from transformers import AutoTokenizer

        kw = {"revision": self.spec["revision"]} if self.spec["revision"] else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.spec["model"], **kw)
        except OSError as e:
            raise StageError(f"{self.key('model')}: cannot load a tokenizer from {self.spec['model']!r}: {e}") from e
        if self.spec["prompt_format"] == "chat_template" and not getattr(self.tokenizer, "chat_template", None):
            raise StageError(
                f"{self.key('prompt_format')} is chat_template but the tokenizer of "
                f"{self.spec['model']!r} has no chat template; use prompt_format: plain"
            )
        self.model = self.load(kw)
        self.model.eval()
        self.pad_id = self.pad_token_id()
        self.device = next(self.model.parameters()).device
        self.details: list[dict] = []
        self.info: dict = {}

    # -- the spec -------------------------------------------------------------------------------
    def key(self, k: str) -> str:
        return f"rewards.{self.name}.{k}"

    def check_spec(self) -> None:
        s = self.spec
        if not s["model"]:  # a trained_on model is set by its stage from the rule's input
            raise StageError(
                f"{self.key('model')} is required for backend {s['backend']!r}: a hub model id "
                f"(with its revision pinned) or a local model folder"
            )
        for k in ("batch_size", "max_length"):
            if not isinstance(s[k], int) or s[k] < 1:
                raise StageError(f"{self.key(k)} must be a positive integer, not {s[k]!r}")
        choices = {
            "dtype": DTYPES,
            "prompt_format": ("chat_template", "plain"),
            "aggregate": tuple(AGGREGATES),
            "head": ("qwen2_math", "token_classifier"),
        }
        for k, allowed in choices.items():
            if s[k] not in allowed:
                raise StageError(f"{self.key(k)} is {s[k]!r}; one of {list(allowed)}")
        fields = {"user_template": ("problem",), "plain_template": ("problem", "trace")}
        for k, names in fields.items():
            try:
                s[k].format(**{n: "" for n in names})
            except (KeyError, IndexError, ValueError) as e:
                raise StageError(f"{self.key(k)} {s[k]!r} may only use the fields {list(names)} ({e})") from e

    def load_kwargs(self, kw: dict) -> dict:
        dtype = self.spec["dtype"]
        kw = {**kw, "dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        if self.spec["device_map"]:
            kw["device_map"] = self.spec["device_map"]
        return kw

    def place(self, model):
        return model if self.spec["device_map"] else on_accelerator(model)

    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        if pad is None:
            raise StageError(
                f"{self.key('model')}: the tokenizer has neither a pad nor an eos token to pad batches with"
            )
        return pad

    # -- text -----------------------------------------------------------------------------------
    def response(self, trace: str) -> str:
        return trace

    def render(self, item: dict) -> str:
        s = self.spec
        response = self.response(item["trace"])
        if s["prompt_format"] == "plain":
            return s["plain_template"].format(problem=item["problem"], trace=response)
        messages = [{"role": "system", "content": s["system_prompt"]}] if s["system_prompt"] is not None else []
        messages += [
            {"role": "user", "content": s["user_template"].format(problem=item["problem"])},
            {"role": "assistant", "content": response},
        ]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)

    def encode(self, items: list[dict]) -> tuple[list[list[int]], list[bool]]:
        """Token ids of each rendered item, truncated to max_length; and which were truncated.
        A chat template writes its own special tokens (BOS included), so none are added to it."""
        special = self.spec["prompt_format"] == "plain"
        ids, truncated = [], []
        for it in items:
            full = self.tokenizer(self.render(it), add_special_tokens=special)["input_ids"]
            truncated.append(len(full) > self.spec["max_length"])
            ids.append(full[: self.spec["max_length"]])
        return ids, truncated

    # -- scoring --------------------------------------------------------------------------------
    def score(self, items: list[dict]) -> list[float]:
        ids, truncated = self.encode(items)
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))  # longest first: padding stays small
        out: list = [None] * len(ids)
        bs = self.spec["batch_size"]
        start = time.perf_counter()
        for b in tqdm(range(0, len(order), bs), desc=f"reward {self.name}", mininterval=2):
            rows = order[b : b + bs]
            width = max(len(ids[i]) for i in rows)
            x = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                x[r, : len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                mask[r, : len(ids[i])] = 1
            with torch.inference_mode():
                results = self.forward(x.to(self.device), mask.to(self.device))
            for r, i in enumerate(rows):
                out[i] = results[r]
        seconds = time.perf_counter() - start
        tokens = sum(map(len, ids))
        self.details = [{"tokens": len(i), "truncated": t, **d} for i, t, (_, d) in zip(ids, truncated, out)]
        self.info = {
            "backend": self.spec["backend"],
            "model": self.spec["model"],
            "revision": self.spec["revision"],
            "tokens": tokens,
            "max_length": self.spec["max_length"],
            "truncation": "right",
            "truncated": sum(truncated),
            "seconds": seconds,
            "tokens_per_s": tokens / seconds if seconds > 0 else math.nan,
        }
        return [r for r, _ in out]

    def forward(self, x, mask) -> list[tuple[float, dict]]:
        raise NotImplementedError

    def load(self, kw: dict):
        raise NotImplementedError


def _load(cls, path: str, kw: dict, key: str, **extra):
    try:
        return cls.from_pretrained(path, **kw, **extra)
    except OSError as e:
        raise StageError(f"{key}: cannot load {path!r}: {e}") from e


class SequenceClassifierReward(TransformersReward):
    """Skywork-Reward style: the pooled logit of a one-label sequence classifier."""

    def load(self, kw):
        from transformers import AutoModelForSequenceClassification

        return _load_labelled(
            self,
            AutoModelForSequenceClassification,
            kw,
            1,
            "a sequence_classifier reward model has one (its logit is the reward)",
        )

    def pad_token_id(self) -> int:
        # The model pools at the last token that is not its pad token: pad with that same id.
        config = self.model.config.get_text_config()
        if config.pad_token_id is None:
            config.pad_token_id = super().pad_token_id()
        return config.pad_token_id

    def forward(self, x, mask):
        logits = self.model(input_ids=x, attention_mask=mask, use_cache=False).logits[:, 0].float()
        return [(v, {}) for v in logits.tolist()]


def _load_labelled(owner: TransformersReward, auto_class, kw: dict, num_labels: int, why: str):
    """An Auto* classifier whose label count must be ``num_labels`` (``why`` says what they mean)."""
    model = _load(auto_class, owner.spec["model"], owner.load_kwargs(kw), owner.key("model"))
    if model.config.num_labels != num_labels:
        raise StageError(f"{owner.key('model')}: {owner.spec['model']!r} has {model.config.num_labels} labels; {why}")
    return owner.place(model)


def _load_score_model(owner: TransformersReward, kw: dict, num_labels: int):
    model, info = _load(
        Qwen2MathScoreModel,
        owner.spec["model"],
        owner.load_kwargs(kw),
        owner.key("model"),
        num_labels=num_labels,
        output_loading_info=True,
    )
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("lm_head")]
    mismatched = info.get("mismatched_keys", ())
    if missing or mismatched:
        raise StageError(
            f"{owner.key('model')}: {owner.spec['model']!r} does not hold a Qwen2.5-Math reward head "
            f"(Qwen2 body under 'model.', score.0 / score.2 linear layers with {num_labels} "
            f"output(s)); missing {sorted(missing)[:6]}, mismatched {list(mismatched)[:3]}"
        )
    return owner.place(model)


class OutcomeReward(TransformersReward):
    """Qwen2.5-Math-RM style: the scalar head's value at the last token of the conversation."""

    def load(self, kw):
        return _load_score_model(self, kw, num_labels=1)

    def forward(self, x, mask):
        values = self.model(x, mask)[..., 0].float()
        last = mask.sum(dim=1) - 1  # right padding: the last real token
        return [(v, {}) for v in values[torch.arange(len(x), device=values.device), last].tolist()]


class ProcessReward(TransformersReward):
    """Qwen2.5-Math-PRM style: per-step positive-label probability at each step separator,
    aggregated over the trace's steps."""

    def __init__(self, spec: dict, name: str = "reward"):
        super().__init__(spec, name)
        tok = self.spec["step_token"]
        ids = self.tokenizer(tok, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise StageError(
                f"{self.key('step_token')} {tok!r} is {len(ids)} tokens for the tokenizer of "
                f"{self.spec['model']!r}; it must be exactly one (a special token of the PRM)"
            )
        self.step_id = ids[0]

    def load(self, kw):
        if self.spec["head"] == "qwen2_math":
            return _load_score_model(self, kw, num_labels=2)
        from transformers import AutoModelForTokenClassification

        return _load_labelled(
            self, AutoModelForTokenClassification, kw, 2, "a process reward head has two (negative, positive)"
        )

    def response(self, trace: str) -> str:
        steps = [s.strip() for s in trace.split(self.spec["step_split"]) if s.strip()]
        return "".join(s + self.spec["step_token"] for s in steps)

    def forward(self, x, mask):
        logits = (
            self.model(x, mask)
            if self.spec["head"] == "qwen2_math"
            else self.model(input_ids=x, attention_mask=mask, use_cache=False).logits
        )
        positive = torch.softmax(logits.float(), dim=-1)[..., 1]
        at_steps = (x == self.step_id) & mask.bool()
        out = []
        for r in range(len(x)):
            steps = positive[r][at_steps[r]].tolist()
            reward = AGGREGATES[self.spec["aggregate"]](steps) if steps else math.nan
            out.append((reward, {"step_rewards": steps}))
        return out


class TokenLogitReward(TransformersReward):
    """Nemotron-Reward style: a causal LM's logit of ``token_id`` at the conversation's last token."""

    def check_spec(self) -> None:
        super().check_spec()
        if not isinstance(self.spec["token_id"], int) or self.spec["token_id"] < 0:
            raise StageError(f"{self.key('token_id')} must be a vocabulary index (>= 0), not {self.spec['token_id']!r}")

    def load(self, kw):
        from transformers import AutoModelForCausalLM

        model = _load(AutoModelForCausalLM, self.spec["model"], self.load_kwargs(kw), self.key("model"))
        vocab = model.get_output_embeddings().weight.shape[0]
        if self.spec["token_id"] >= vocab:
            raise StageError(f"{self.key('token_id')} {self.spec['token_id']} is outside the vocabulary ({vocab})")
        return self.place(model)

    def forward(self, x, mask):
        hidden = self.model.get_decoder()(input_ids=x, attention_mask=mask, use_cache=False).last_hidden_state
        last = mask.sum(dim=1) - 1  # right padding: the last real token
        at_last = hidden[torch.arange(len(x), device=hidden.device), last]
        logits = self.model.get_output_embeddings()(at_last)[:, self.spec["token_id"]].float()
        return [(v, {}) for v in logits.tolist()]
