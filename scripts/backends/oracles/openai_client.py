"""The Oracle behind any OpenAI-compatible chat endpoint: an API (a GPT-5.2-class model) or a
vLLM server of an open model. Same interface as the built-in oracle (``scripts.backends.oracles``).

What a researcher can count on:
- requests go out asynchronously, at most ``concurrency`` at a time;
- retries are the openai client's own: 408, 409, 429, 5xx, timeouts and dropped connections,
  with exponential backoff and jitter, up to ``max_attempts`` attempts in all; after that the
  item is recorded as failed with its reason and the run goes on. Other 4xx fail the item at
  once; 401/403/404 stop the run (a bad key, model or URL fails every item alike);
- a ``Retry-After`` (or ``retry-after-ms``) header is honoured by *every* worker, not only the
  one that was told, and however long it is (the client alone honours up to two minutes, and
  only in the request that got it): an HTTP hook pauses all requests until then;
- each finished request is committed to the per-item cache (``cache``) the moment it
  finishes: a killed run resumes without re-sending it, and a changed prompt re-sends only the
  items whose rendered prompt changed;
- token usage and an estimated cost (``price_per_million_*_tokens``) come back in ``usage()``;
- budget caps (``budget_usd``, and the run's ``oracle_costs.budget_usd``; ``budget``): before
  each request its expected cost is checked against what the caches say was spent, and when it
  would pass a cap the client stops sending, lets what is in flight finish into the cache, and
  stops the stage with a message naming the cap's key;
- with ``batch.enabled``, the uncached requests go through the Batch API (``batch``): submitted
  once, picked up again by a rerun after a kill, what a batch did not answer sent one by one;
- the API key is read from the environment variable ``api_key_env`` names, and never written
  to a file, a log or a reason string.
"""

import asyncio
import contextvars
import email.utils
import os
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from scripts.backends.oracles.base import REWRITE_TASKS, OracleOutput, check_task
from scripts.backends.oracles.batch import BatchRun
from scripts.backends.oracles.budget import Budget, BudgetReached
from scripts.backends.oracles.cache import OracleCache, cache_key
from scripts.backends.oracles.estimate import TokenCounter, cost, price
from scripts.backends.oracles.prompts import OracleError, Template, load_template
from scripts.data.verification import last_boxed

FATAL_STATUS = {401, 403, 404}  # every item would fail alike: stop the run
_attempts = contextvars.ContextVar("attempts")  # the requests one item's call has sent


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


def _classify(exc: Exception, key: str | None) -> str:
    """Why a request failed, in words. The reason never holds the key: for auth errors it holds
    no server text at all, elsewhere the key is masked."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return "HTTP 429 rate limited"
        if status in (401, 403):
            return f"HTTP {status}: the endpoint refused the API key"
        if status >= 500 or status in (408, 409):
            return f"HTTP {status}"
        detail = str(getattr(exc, "message", "") or "")[:200]
        return f"HTTP {status}: {detail.replace(key, '***') if key else detail}"
    return type(exc).__name__


class OpenAIOracle:
    """``spec``: one entry of the config's ``oracles`` (backend ``openai``); ``cache``: the
    SQLite file of finished requests (None: in memory, nothing kept)."""

    # openai 3.x honours a Retry-After of up to two minutes and does not retry after a longer
    # one; for those the header is dropped (the client backs off as usual) and the hook waits.
    CLIENT_MAX_RETRY_AFTER_S = 120.0

    def __init__(self, spec: dict, cache: str | None = None):
        self.spec = spec
        self.cache = OracleCache(cache)
        self.sampling = {
            "temperature": _num(spec.get("temperature"), float),
            "top_p": _num(spec.get("top_p"), float),
            "max_tokens": _num(spec.get("max_tokens"), int),
            "seed": _num(spec.get("seed"), int),
            "extra": spec.get("extra") or {},
        }
        self.stats = Counter()
        self.failed_reasons = Counter()
        self.budget = Budget.of(spec, cache)
        self._counter = None  # the estimate's token counter, built when a budget needs it
        self._stop = None  # why no further request may be sent (a budget cap)
        self._pause_until = 0.0  # a Retry-After pauses every request until then
        self._key = None  # only to mask it in error text; never stored, logged or written

    # -- public interface --

    def run(self, task: str, items: list[dict]) -> list[OracleOutput]:
        return asyncio.run(self.arun(task, items))

    def render(self, task: str, item: dict) -> list[dict]:
        return self.template(task).render(item)

    def template(self, task: str) -> Template:
        check_task(task)
        prompts = self.spec.get("prompts") or {}
        if not prompts.get(task):
            raise OracleError(f"oracle has no prompt template for task {task!r} (oracles.<name>.prompts.{task})")
        return load_template(prompts[task])

    def key(self, task: str, template: Template, messages: list[dict], item: dict) -> str:
        return cache_key(self.spec["model"], task, template.id, messages, self.sampling, item["id"])

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = TokenCounter(self.spec)
        return self._counter

    @property
    def batch(self) -> bool:
        return bool((self.spec.get("batch") or {}).get("enabled"))

    def expected_cost(self, task: str, messages: list[dict], item: dict, batch: bool = False) -> float:
        """What one request is expected to cost (``estimate``), at the batch price in batch mode
        (the price of a request alone where the endpoint offers none)."""
        prices = price(self.spec, batch) or price(self.spec)
        return cost(self.counter.prompt(messages), self.counter.completion(task, item), prices)

    def cost_of(self, response: dict) -> float:
        """What one answered request cost at the oracle's prices."""
        prices = (price(self.spec, True) or price(self.spec)) if response.get("batch") else price(self.spec)
        return cost(response["prompt_tokens"], response["completion_tokens"], prices)

    def body(self, messages: list[dict]) -> dict:
        """The JSON body of a chat request (the Batch API file's ``body``)."""
        req = self._request(messages)
        return {**{k: v for k, v in req.items() if k != "extra_body"}, **req.get("extra_body", {})}

    def estimate(self, task: str, items: list[dict], cache: str | None = None) -> dict:
        """What ``run(task, items)`` would send and cost, sending nothing: requests, those already
        in ``cache`` (the oracle's cache file, if it exists), and for the rest their prompt tokens,
        expected completion tokens and cost, one by one and through the Batch API (NaN where the
        endpoint offers no batch price)."""
        template = self.template(task)
        messages = [template.render(it) for it in items]
        keys = [self.key(task, template, m, it) for m, it in zip(messages, items)]
        found = set(OracleCache(cache).get_many(keys)) if cache and Path(cache).exists() else set()
        todo = [i for i, k in enumerate(keys) if k not in found]
        prompt = sum(self.counter.prompt(messages[i]) for i in todo)
        completion = sum(self.counter.completion(task, items[i]) for i in todo)
        return {
            "requests": len(items),
            "cached": len(items) - len(todo),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": cost(prompt, completion, price(self.spec)),
            "batch_cost": cost(prompt, completion, price(self.spec, batch=True)),
        }

    def usage(self) -> dict:
        s = self.stats
        price_in = self.spec.get("price_per_million_input_tokens") or 0.0
        price_out = self.spec.get("price_per_million_output_tokens") or 0.0
        return {
            "backend": "openai",
            "model": self.spec["model"],
            "items": s["items"],
            "cached": s["cached"],
            "requests_sent": s["requests_sent"],
            "retries": s["requests_sent"] - s["sent_items"],
            "finished": s["finished"],
            "failed": s["failed"],
            "failed_reasons": dict(self.failed_reasons),
            # every item of the output, cached ones included: what the data cost to make
            "prompt_tokens": s["prompt_tokens"],
            "completion_tokens": s["completion_tokens"],
            "estimated_cost": s["cost"],
            # what this run paid
            "this_run": {
                "prompt_tokens": s["new_prompt_tokens"],
                "completion_tokens": s["new_completion_tokens"],
                "estimated_cost": s["new_cost"],
            },
            "price_per_million_input_tokens": price_in,
            "price_per_million_output_tokens": price_out,
            **(
                {
                    "batch": {
                        key: s[key]
                        for key in (
                            "batches_submitted",
                            "batches_resumed",
                            "batch_requests",
                            "batch_answered",
                            "batch_unanswered",
                        )
                    }
                }
                if self.batch
                else {}
            ),
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
            try:
                if self.batch:
                    todo = await self._batches(client, task, template, items, messages, keys, todo, responses)
                if todo:
                    await self._one_by_one(client, task, template, items, messages, keys, todo, responses, failures)
            finally:
                await client.close()
        if self._stop is not None:  # everything answered is in the cache; the stage stops here
            raise BudgetReached(self._stop)
        outputs = []
        for i, k in enumerate(keys):
            if k not in responses:
                outputs.append(OracleOutput(None, failures[i]))
                continue
            r = responses[k]
            self.stats.update(prompt_tokens=r["prompt_tokens"], completion_tokens=r["completion_tokens"])
            self.stats["cost"] += self.cost_of(r)
            outputs.append(parse(task, r, cached=k in cached))
        return outputs

    def _answered(self, response: dict) -> None:
        self.stats.update(
            finished=1,
            new_prompt_tokens=response["prompt_tokens"],
            new_completion_tokens=response["completion_tokens"],
        )
        self.stats["new_cost"] += self.cost_of(response)

    async def _batches(self, client, task, template, items, messages, keys, todo, responses) -> list[int]:
        """The Batch API path (``batch``); returns what is left to send one by one: the items a
        batch did not answer (none of those no batch took because of a budget cap)."""
        run = BatchRun(self, client)
        got = await run.run(
            task,
            template.id,
            [
                (keys[i], items[i]["id"], messages[i], self.expected_cost(task, messages[i], items[i], True))
                for i in todo
            ],
        )
        for k in {keys[i] for i in todo} & set(got):
            self._answered(got[k])
        responses.update(got)
        if run.refused is not None:
            self._stop = run.refused
        return [i for i in todo if keys[i] not in responses and keys[i] in run.submitted]

    async def _one_by_one(self, client, task, template, items, messages, keys, todo, responses, failures) -> None:
        bar = tqdm(total=len(todo), desc=f"oracle {task}", mininterval=2)
        queue = iter(todo)

        async def worker():
            for i in queue:  # one shared iterator: each index goes to exactly one worker
                if self._stop is not None:
                    failures[i] = "not sent: a budget cap was reached"
                    continue
                reserved = 0.0
                if self.budget.caps:
                    try:
                        reserved = self.budget.reserve(self.expected_cost(task, messages[i], items[i]))
                    except BudgetReached as e:  # nothing more is sent; what is in flight finishes
                        self._stop = str(e)
                        failures[i] = "not sent: a budget cap was reached"
                        continue
                response, reason = await self._send(client, messages[i])
                self.budget.settle(reserved, self.cost_of(response) if response else 0.0)
                if response is None:
                    failures[i] = reason
                else:  # committed now, so a run killed later never sends it again
                    self.cache.put(
                        keys[i],
                        item_id=items[i]["id"],
                        task=task,
                        template=template.id,
                        model=self.spec["model"],
                        response=response,
                    )
                    responses[keys[i]] = response
                    self.stats["new_cost"] += self.cost_of(response)
                bar.update()

        workers = [asyncio.create_task(worker()) for _ in range(min(self.spec["concurrency"], len(todo)))]
        try:
            await asyncio.gather(*workers)
        finally:  # a run-stopping error in one worker stops the others
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            bar.close()

    def _client(self):
        from openai import AsyncOpenAI, DefaultAsyncHttpxClient

        var = self.spec.get("api_key_env")
        key = os.environ.get(var) if var else "none"  # a keyless local server still wants a value
        if not key:
            raise OracleError(f"the API key variable {var} is not set (oracles.<name>.api_key_env)")
        self._key = key
        http = DefaultAsyncHttpxClient(
            event_hooks={"request": [self._before_request], "response": [self._after_response]}
        )
        return AsyncOpenAI(
            api_key=key,
            base_url=self.spec.get("base_url"),
            max_retries=self.spec["max_attempts"] - 1,
            timeout=float(self.spec["timeout_s"]),
            http_client=http,
        )

    async def _before_request(self, request) -> None:
        """Every attempt, the client's retries included: wait out a Retry-After, and count it if it
        is a chat request (the Batch API's file and batch calls are not requests for an item)."""
        pause = self._pause_until - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        if request.url.path.endswith("/chat/completions"):
            self.stats["requests_sent"] += 1
            attempts = _attempts.get(None)
            if attempts is not None:
                attempts[0] += 1

    async def _after_response(self, response) -> None:
        wait = retry_after_s(response.headers) if response.status_code >= 400 else None
        if wait is None:
            return
        self._pause_until = max(self._pause_until, time.monotonic() + wait)
        print(f"HTTP {response.status_code}: the endpoint asks to wait {wait:.2f} s; every request waits")
        if wait > self.CLIENT_MAX_RETRY_AFTER_S:  # the client would not retry: let it, the hook waits
            for header in ("retry-after", "retry-after-ms"):
                response.headers.pop(header, None)

    async def _send(self, client, messages: list[dict]) -> tuple[dict | None, str]:
        """(response record, "ok") or (None, why it failed), after up to max_attempts tries."""
        attempts = [0]
        _attempts.set(attempts)  # this task's own counter, seen by the request hook
        self.stats["sent_items"] += 1
        try:
            resp = await client.chat.completions.create(**self._request(messages))
        except Exception as e:  # noqa: BLE001 -- every failure is classified, none escapes silently
            reason = _classify(e, self._key)
            if getattr(e, "status_code", None) in FATAL_STATUS:
                raise OracleError(
                    f"oracle {self.spec['model']!r} at {self.spec.get('base_url') or 'the OpenAI API'}: "
                    f"{reason} (key from ${self.spec.get('api_key_env')})"
                ) from None
            n = max(1, attempts[0])
            failed = f"request failed after {n} attempt{'s' * (n > 1)}: {reason}"
            self.stats["failed"] += 1
            self.failed_reasons[failed] += 1
            print(failed)
            return None, failed
        if attempts[0] > 1:
            print(f"answered after {attempts[0]} attempts")
        record = _record(resp)
        self.stats.update(
            finished=1, new_prompt_tokens=record["prompt_tokens"], new_completion_tokens=record["completion_tokens"]
        )
        return record, "ok"

    def _request(self, messages: list[dict]) -> dict:
        s = self.sampling
        req = {"model": self.spec["model"], "messages": messages}
        for name, value in (
            ("temperature", s["temperature"]),
            ("top_p", s["top_p"]),
            ("max_completion_tokens", s["max_tokens"]),
            ("seed", s["seed"]),
        ):
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
    return {
        "content": choice.message.content if choice else None,
        "finish_reason": choice.finish_reason if choice else None,
        "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
        "model": resp.model,
    }


def parse(task: str, response: dict, cached: bool = False) -> OracleOutput:
    """A finished response as the task's output: a rewrite needs a final boxed answer (whether
    it is right is the stream's verification), the judge a boxed score from 1 to 5."""
    usage = {
        "prompt_tokens": response["prompt_tokens"],
        "completion_tokens": response["completion_tokens"],
        "cached": cached,
    }
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
