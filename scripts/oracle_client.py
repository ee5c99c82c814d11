"""The Oracle behind any OpenAI-compatible chat endpoint: an API (a GPT-5.2-class model) or a
vLLM server of an open model. Same interface as the built-in oracle (``scripts/oracle.py``).

What a researcher can count on:
- requests go out asynchronously, at most ``concurrency`` at a time;
- 429, 408, 409, 5xx, timeouts and dropped connections are retried with exponential backoff and
  jitter, waiting at least what a ``Retry-After`` header asks (and pausing every worker, not
  just the one that was told); after ``max_attempts`` the item is recorded as failed with its
  reason and the run goes on. Other 4xx fail the item at once; 401/403/404 stop the run (a bad
  key, model or URL fails every item alike);
- each finished request is committed to the per-item cache (``scripts/oracle_cache.py``) the
  moment it finishes: a killed run resumes without re-sending it, and a changed prompt
  re-sends only the items whose rendered prompt changed;
- token usage and an estimated cost (``price_per_million_*_tokens``) come back in ``usage()``;
- the API key is read from the environment variable ``api_key_env`` names, and never written
  to a file, a log or a reason string.

Prompts are template files (``prompts/<task>.v<N>.md``): role sections opened by a line
``<!-- role: system -->`` (or ``user``, ``assistant``) whose ``{{field}}`` placeholders are
filled from the item; text before the first role line documents the template and is not sent.
"""


import asyncio
import email.utils
import os
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from scripts.oracle import REWRITE_TASKS, TASKS, OracleOutput
from scripts.oracle_cache import OracleCache, cache_key
from scripts.stage import StageError
from scripts.verification import last_boxed

_ROLE = re.compile(r"^<!-- role: (system|user|assistant) -->[ \t]*$", re.M)
_FIELD = re.compile(r"\{\{(\w+)\}\}")
_NAME = re.compile(r"^(?P<name>\w+)\.v(?P<version>\d+)\.md$")
RETRYABLE_STATUS = {408, 409, 429}  # and every 5xx
FATAL_STATUS = {401, 403, 404}  # every item would fail alike: stop the run


class OracleError(StageError):
    """The run cannot go on (no key, key refused, unknown model or URL)."""


# ---- prompt templates --------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    id: str  # "<name>.v<version>", part of the cache key
    messages: tuple[tuple[str, str], ...]  # (role, text with {{field}} placeholders)

    @property
    def fields(self) -> set[str]:
        return {f for _, text in self.messages for f in _FIELD.findall(text)}

    def render(self, item: dict) -> list[dict]:
        missing = self.fields - set(item)
        if missing:
            raise OracleError(f"prompt template {self.id} needs {sorted(missing)}, which item "
                              f"{item.get('id')!r} lacks")
        return [{"role": role, "content": _FIELD.sub(lambda m: str(item[m.group(1)]), text)}
                for role, text in self.messages]


def load_template(path: str | Path) -> Template:
    path = Path(path)
    m = _NAME.match(path.name)
    if not m:
        raise OracleError(f"prompt template {path}: the file name must be <name>.v<version>.md "
                          f"(the version is part of the cache key)")
    text = path.read_text(encoding="utf-8")
    parts = _ROLE.split(text)  # [preamble, role, body, role, body, ...]
    messages = tuple((role, body.strip("\n")) for role, body in zip(parts[1::2], parts[2::2]))
    if not messages or not any(r == "user" for r, _ in messages):
        raise OracleError(f"prompt template {path} has no '<!-- role: user -->' section")
    return Template(f"{m['name']}.v{m['version']}", messages)


# ---- retries -----------------------------------------------------------------------------------

def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Wait before retry number ``attempt`` (1, 2, ...): exponential, capped, with "equal
    jitter" -- half the step fixed, half uniform -- so waits grow yet workers spread out."""
    step = min(max_s, base_s * 2 ** (attempt - 1))
    return step / 2 + rng.uniform(0, step / 2)


def retry_after_s(headers) -> float | None:
    """Seconds a ``Retry-After`` (or ``retry-after-ms``) header asks for, or None."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _classify(exc: Exception, key: str | None) -> tuple[str, bool, float | None]:
    """(reason, retryable, Retry-After seconds) of a failed request. The reason never holds
    the key: for auth errors it holds no server text at all, elsewhere the key is masked."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError):
        return "connection error", True, None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        wait = retry_after_s(exc.response.headers)
        if status == 429:
            return "HTTP 429 rate limited", True, wait
        if status >= 500 or status in RETRYABLE_STATUS:
            return f"HTTP {status}", True, wait
        if status in (401, 403):
            return f"HTTP {status}: the endpoint refused the API key", False, None
        detail = str(getattr(exc, "message", "") or "")[:200]
        if key:
            detail = detail.replace(key, "***")
        return f"HTTP {status}: {detail}", False, None
    return f"{type(exc).__name__}", False, None


# ---- the client --------------------------------------------------------------------------------

class OpenAIOracle:
    """``spec``: one entry of the config's ``oracles`` (backend ``openai``); ``cache``: the
    SQLite file of finished requests (None: in memory, nothing kept)."""

    def __init__(self, spec: dict, cache: str | None = None):
        self.spec = spec
        self.cache = OracleCache(cache)
        self.rng = random.Random()
        self.sampling = {"temperature": _num(spec.get("temperature"), float),
                         "top_p": _num(spec.get("top_p"), float),
                         "max_tokens": _num(spec.get("max_tokens"), int),
                         "seed": _num(spec.get("seed"), int),
                         "extra": spec.get("extra") or {}}
        self.stats = Counter()
        self.failed_reasons = Counter()
        self._pause_until = 0.0  # a Retry-After pauses every worker until then
        self._key = None  # only to mask it in error text; never stored, logged or written

    # -- public interface --

    def run(self, task: str, items: list[dict]) -> list[OracleOutput]:
        return asyncio.run(self.arun(task, items))

    def render(self, task: str, item: dict) -> list[dict]:
        return self.template(task).render(item)

    def template(self, task: str) -> Template:
        if task not in TASKS:
            raise ValueError(f"unknown oracle task {task!r}; expected one of {TASKS}")
        prompts = self.spec.get("prompts") or {}
        if not prompts.get(task):
            raise OracleError(f"oracle has no prompt template for task {task!r} (oracles.<name>.prompts.{task})")
        return load_template(prompts[task])

    def key(self, task: str, template: Template, messages: list[dict], item: dict) -> str:
        return cache_key(self.spec["model"], task, template.id, messages, self.sampling, item["id"])

    def usage(self) -> dict:
        s = self.stats
        price_in = self.spec.get("price_per_million_input_tokens") or 0.0
        price_out = self.spec.get("price_per_million_output_tokens") or 0.0

        def cost(p, c):
            return (p * price_in + c * price_out) / 1e6
        return {
            "backend": "openai", "model": self.spec["model"], "items": s["items"], "cached": s["cached"],
            "requests_sent": s["requests_sent"], "retries": s["requests_sent"] - s["sent_items"],
            "finished": s["finished"], "failed": s["failed"], "failed_reasons": dict(self.failed_reasons),
            # every item of the output, cached ones included: what the data cost to make
            "prompt_tokens": s["prompt_tokens"], "completion_tokens": s["completion_tokens"],
            "estimated_cost": cost(s["prompt_tokens"], s["completion_tokens"]),
            # what this run paid
            "this_run": {"prompt_tokens": s["new_prompt_tokens"], "completion_tokens": s["new_completion_tokens"],
                         "estimated_cost": cost(s["new_prompt_tokens"], s["new_completion_tokens"])},
            "price_per_million_input_tokens": price_in, "price_per_million_output_tokens": price_out,
        }

    # -- the run --

    async def arun(self, task: str, items: list[dict]) -> list[OracleOutput]:
        template = self.template(task)
        messages = [template.render(it) for it in items]
        keys = [self.key(task, template, m, it) for m, it in zip(messages, items)]
        responses: dict[str, dict] = self.cache.get_many(keys)
        cached = set(responses)
        todo = [i for i, k in enumerate(keys) if k not in cached]
        self.stats.update(items=len(items), cached=len(items) - len(todo))
        failures: dict[int, str] = {}
        if todo:
            client = self._client()
            bar = tqdm(total=len(todo), desc=f"oracle {task}", mininterval=2)
            queue = iter(todo)

            async def worker():
                for i in queue:  # one shared iterator: each index goes to exactly one worker
                    response, reason = await self._send(client, messages[i])
                    if response is None:
                        failures[i] = reason
                    else:  # committed now, so a run killed later never sends it again
                        self.cache.put(keys[i], item_id=items[i]["id"], task=task, template=template.id,
                                       model=self.spec["model"], response=response)
                        responses[keys[i]] = response
                    bar.update()
            workers = [asyncio.create_task(worker())
                       for _ in range(min(self.spec["concurrency"], len(todo)))]
            try:
                await asyncio.gather(*workers)
            finally:  # a run-stopping error in one worker stops the others
                for w in workers:
                    w.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                bar.close()
                await client.close()
        outputs = []
        for i, (it, k) in enumerate(zip(items, keys)):
            if k not in responses:
                outputs.append(OracleOutput(None, failures[i]))
                continue
            r = responses[k]
            self.stats.update(prompt_tokens=r["prompt_tokens"], completion_tokens=r["completion_tokens"])
            outputs.append(parse(task, r, cached=k in cached))
        return outputs

    def _client(self):
        from openai import AsyncOpenAI

        var = self.spec.get("api_key_env")
        key = os.environ.get(var) if var else "none"  # a keyless local server still wants a value
        if not key:
            raise OracleError(f"the API key variable {var} is not set (oracles.<name>.api_key_env)")
        self._key = key
        return AsyncOpenAI(api_key=key, base_url=self.spec.get("base_url"), max_retries=0,
                           timeout=float(self.spec["timeout_s"]))

    async def _send(self, client, messages: list[dict]) -> tuple[dict | None, str]:
        """(response record, "ok") or (None, why it failed), after up to max_attempts tries."""
        attempts = self.spec["max_attempts"]
        reason = "not sent"
        self.stats["sent_items"] += 1
        for attempt in range(1, attempts + 1):
            pause = self._pause_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            self.stats["requests_sent"] += 1
            try:
                resp = await client.chat.completions.create(**self._request(messages))
            except Exception as e:  # noqa: BLE001 -- every failure is classified, none escapes silently
                reason, retryable, wait = _classify(e, self._key)
                if getattr(e, "status_code", None) in FATAL_STATUS:
                    raise OracleError(f"oracle {self.spec['model']!r} at {self.spec.get('base_url') or 'the OpenAI API'}: "
                                      f"{reason} (key from ${self.spec.get('api_key_env')})") from None
                if not retryable or attempt == attempts:
                    break
                delay = backoff_s(attempt, self.spec["backoff_base_s"], self.spec["backoff_max_s"], self.rng)
                if wait is not None:
                    delay = max(delay, wait)
                    self._pause_until = max(self._pause_until, time.monotonic() + wait)
                print(f"attempt {attempt}/{attempts}: {reason}; retrying in {delay:.2f} s")
                await asyncio.sleep(delay)
                continue
            record = _record(resp)
            self.stats.update(finished=1, new_prompt_tokens=record["prompt_tokens"],
                              new_completion_tokens=record["completion_tokens"])
            return record, "ok"
        failed = f"request failed after {attempt} attempt{'s' * (attempt > 1)}: {reason}"
        self.stats["failed"] += 1
        self.failed_reasons[failed] += 1
        print(failed)
        return None, failed

    def _request(self, messages: list[dict]) -> dict:
        s = self.sampling
        req = {"model": self.spec["model"], "messages": messages}
        for name, value in (("temperature", s["temperature"]), ("top_p", s["top_p"]),
                            ("max_completion_tokens", s["max_tokens"]), ("seed", s["seed"])):
            if value is not None:  # None: not sent, the server's default applies
                req[name] = value
        if s["extra"]:
            req["extra_body"] = s["extra"]
        return req


def _num(value, kind):
    return None if value is None else kind(value)  # 1 and 1.0 give one cache key


def _record(resp) -> dict:
    """What the cache keeps of a finished response."""
    choice = resp.choices[0] if resp.choices else None
    usage = resp.usage
    return {"content": choice.message.content if choice else None,
            "finish_reason": choice.finish_reason if choice else None,
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "model": resp.model}


def parse(task: str, response: dict, cached: bool = False) -> OracleOutput:
    """A finished response as the task's output: a rewrite needs a final boxed answer (whether
    it is right is the stream's verification), the judge a boxed score from 1 to 5."""
    usage = {"prompt_tokens": response["prompt_tokens"], "completion_tokens": response["completion_tokens"],
             "cached": cached}
    text = response["content"]
    cut = " (cut off at max_tokens)" if response.get("finish_reason") == "length" else ""
    if not text or not text.strip():
        return OracleOutput(None, f"empty response{cut}", **usage)
    boxed = last_boxed(text)
    if task in REWRITE_TASKS:
        if boxed is None:
            return OracleOutput(None, f"no boxed answer{cut}", **usage)
        return OracleOutput(text.strip(), **usage)
    score = boxed.strip() if boxed is not None else ""
    if score not in {"1", "2", "3", "4", "5"}:
        return OracleOutput(None, f"no score from 1 to 5{cut}", **usage)
    return OracleOutput(None, "ok", score=float(score), **usage)
