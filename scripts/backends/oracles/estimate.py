"""What an oracle request will cost before it is sent: its prompt tokens, its expected completion
tokens, and the money at the oracle's prices (``oracles.<name>.estimate`` says how to count).

- **Prompt tokens** are counted with the endpoint's tokenizer where the config names one
  (``estimate.tokenizer``: a local folder or a hub id, read with transformers), through its chat
  template (or ``estimate.chat_template``, a Jinja file, when the server is given one) -- exact
  for a vLLM server of an open model. Without a tokenizer (an API whose tokenizer is not at
  hand) a message counts ``len(text) / chars_per_token`` tokens plus ``message_tokens``, and a
  request ``reply_tokens`` more for the reply's priming.
- **Completion tokens** are expected, not known: a rewrite (``refine``, ``style_align``,
  ``synthesize``) ``output_ratio`` times the source trace's tokens plus ``output_extra_tokens``
  (a reasoning model's hidden reasoning is billed as output: put its typical length there), at
  most ``max_tokens``; a judgement ``judge_output_tokens``.

The same count prices each request the budget cap (``budget``) lets through, and the
``oracle_estimate`` target's table.
"""

import math
from pathlib import Path


def price(spec: dict, batch: bool = False) -> tuple[float, float] | None:
    """(USD per million prompt tokens, per million completion tokens) of a request sent one by
    one, or through the Batch API (None where the oracle's endpoint offers no batch price)."""
    if not batch:
        return spec.get("price_per_million_input_tokens") or 0.0, spec.get("price_per_million_output_tokens") or 0.0
    b = spec.get("batch") or {}
    if b.get("price_per_million_input_tokens") is None or b.get("price_per_million_output_tokens") is None:
        return None
    return b["price_per_million_input_tokens"], b["price_per_million_output_tokens"]


def cost(prompt_tokens: float, completion_tokens: float, prices: tuple[float, float] | None) -> float:
    if prices is None:
        return math.nan
    return (prompt_tokens * prices[0] + completion_tokens * prices[1]) / 1e6


class TokenCounter:
    """Counts the tokens of a request the way ``spec["estimate"]`` says (module docstring)."""

    def __init__(self, spec: dict):
        e = spec.get("estimate") or {}
        self.spec = spec
        self.chars_per_token = float(e.get("chars_per_token") or 4.0)
        self.message_tokens = int(e.get("message_tokens") or 0)
        self.reply_tokens = int(e.get("reply_tokens") or 0)
        self.output_ratio = float(e.get("output_ratio", 1.0))
        self.output_extra = int(e.get("output_extra_tokens") or 0)
        self.judge_tokens = int(e.get("judge_output_tokens") or 0)
        self.tokenizer = None
        self.chat_template = None
        if e.get("tokenizer"):
            from transformers import AutoTokenizer  # as vLLM's server loads it

            revision = {"revision": e["tokenizer_revision"]} if e.get("tokenizer_revision") else {}
            self.tokenizer = AutoTokenizer.from_pretrained(e["tokenizer"], **revision)
            if e.get("chat_template"):
                self.chat_template = Path(e["chat_template"]).read_text(encoding="utf-8")
            elif getattr(self.tokenizer, "chat_template", None):
                self.chat_template = self.tokenizer.chat_template

    @property
    def method(self) -> str:
        if self.tokenizer is None:
            return f"about {self.chars_per_token:g} characters per token (no tokenizer configured)"
        how = "its chat template" if self.chat_template else "its messages, without a chat template"
        return f"the tokenizer {self.spec['estimate']['tokenizer']} over {how}"

    def text(self, text: str) -> int:
        if self.tokenizer is None:
            return math.ceil(len(text) / self.chars_per_token)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt(self, messages: list[dict]) -> int:
        if self.tokenizer is not None and self.chat_template:
            ids = self.tokenizer.apply_chat_template(
                messages, chat_template=self.chat_template, add_generation_prompt=True, tokenize=True
            )
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            return len(ids)
        return sum(self.text(m["content"]) + self.message_tokens for m in messages) + self.reply_tokens

    def completion(self, task: str, item: dict) -> int:
        if task == "judge":
            expected = self.judge_tokens
        else:
            expected = math.ceil(self.output_ratio * self.text(item.get("trace") or "")) + self.output_extra
        cap = self.spec.get("max_tokens")
        return min(expected, cap) if cap else expected
