"""The OpenAI Batch API path of the API oracle (``oracles.<name>.batch.enabled``): a stage's
uncached requests go out as one batch file (at most ``batch.max_requests`` per batch), at the
batch price and under the batch rate limits, and come back into the same per-item cache.

1. A submission is recorded in the cache (``OracleCache.add_submission``) before the batch is
   created, with a random tag that is also the batch's ``metadata``; the batch id is recorded
   as soon as the endpoint returns it.
2. The job polls every ``batch.poll_s`` seconds until the batch is completed, failed, expired or
   cancelled, then fetches its output file: every answered line goes into the cache.
3. A job killed at any point and run again finds its open submissions in the cache and polls
   them instead of submitting again (a submission killed before its id was recorded is found
   among the endpoint's batches by its tag; only one never created is submitted anew).
4. Lines of the error file, and items an expired, failed or cancelled batch never answered, are
   sent again one by one through the ordinary client (``OpenAIOracle``), with its retries.

The batch's expected cost, at the batch price, is reserved against the budget caps (``budget``)
before it is submitted: the items that do not fit are not submitted, and the stage stops after
the batch with the cap's message.

The format (one JSON request per line with a ``custom_id``; one response or error per line
back) is the OpenAI Batch API's, which vLLM's offline batch runner
(``vllm.entrypoints.openai.run_batch``) also reads and writes.
"""

import asyncio
import json
import uuid
from collections import Counter

from scripts.backends.oracles.budget import BudgetReached

TERMINAL = {"completed", "failed", "expired", "cancelled"}
ENDPOINT = "/v1/chat/completions"


def record_of(body: dict) -> dict:
    """What the cache keeps of one answered line (the same fields as a request sent alone)."""
    choice = (body.get("choices") or [None])[0] or {}
    usage = body.get("usage") or {}
    return {
        "content": (choice.get("message") or {}).get("content"),
        "finish_reason": choice.get("finish_reason"),
        "prompt_tokens": usage.get("prompt_tokens") or 0,
        "completion_tokens": usage.get("completion_tokens") or 0,
        "model": body.get("model"),
        "batch": True,  # priced at the batch price in the budget's ledger
    }


def batch_file(requests: list[tuple[str, dict]]) -> bytes:
    """JSONL of (custom_id, request body) pairs, as the Batch API reads it."""
    return "".join(
        json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT, "body": body}) + "\n" for key, body in requests
    ).encode("utf-8")


class BatchRun:
    """One oracle call's batches. ``oracle``: the ``OpenAIOracle`` whose cache, spec, budget,
    request bodies and stats it uses."""

    def __init__(self, oracle, client):
        self.o, self.client = oracle, client
        self.spec = oracle.spec["batch"]
        self.failures = Counter()  # why lines came back without an answer

    async def run(self, task: str, template_id: str, todo: list[tuple[str, str, list[dict], float]]) -> dict:
        """Answers by cache key for ``todo`` ([(key, item id, messages, expected batch cost)]);
        sets ``self.refused`` to the budget's message when not every item could be submitted."""
        self.refused = None
        keys = {k for k, *_ in todo}
        cache, stats = self.o.cache, self.o.stats
        active = [s for s in cache.open_submissions() if keys & {k for k, _ in s["items"]}]
        for s in [s for s in active if s["batch_id"] is None]:
            found = await self._find(s["submission"])
            if found is None:  # killed before the batch was created: submit those items anew
                cache.finish_submission(s["submission"], "never created")
                active.remove(s)
            else:
                cache.set_batch(s["submission"], found)
                s["batch_id"] = found
        if active:
            print(f"batch: picking up {len(active)} submitted batch(es): {[s['batch_id'] for s in active]}")
            stats["batches_resumed"] += len(active)
        covered = {k for s in active for k, _ in s["items"]}
        new, reserved = [], {}
        for key, item_id, messages, expected in todo:
            if key in covered or key in reserved:
                continue
            try:
                reserved[key] = self.o.budget.reserve(expected)
            except BudgetReached as e:
                self.refused = str(e)
                break
            new.append((key, item_id, messages))
        self.submitted = covered | {key for key, _, _ in new}
        for i in range(0, len(new), self.spec["max_requests"]):
            active.append(await self._submit(task, template_id, new[i : i + self.spec["max_requests"]]))
        answers = {}
        try:
            for s in active:
                answers.update(await self._collect(s, reserved))
        finally:  # what was reserved for items no batch answered
            for r in reserved.values():
                self.o.budget.settle(r, 0.0)
        return answers

    async def _find(self, submission: str) -> str | None:
        async for b in self.client.batches.list(limit=100):
            if (b.metadata or {}).get("qup_submission") == submission:
                return b.id
        return None

    async def _submit(self, task: str, template_id: str, new: list[tuple[str, str, list[dict]]]) -> dict:
        submission = uuid.uuid4().hex
        items = [[key, item_id] for key, item_id, _ in new]
        self.o.cache.add_submission(
            submission, task=task, template=template_id, model=self.o.spec["model"], items=items
        )
        data = batch_file([(key, self.o.body(messages)) for key, _, messages in new])
        upload = await self.client.files.create(file=("oracle-batch.jsonl", data), purpose="batch")
        batch = await self.client.batches.create(
            input_file_id=upload.id,
            endpoint=ENDPOINT,
            completion_window=self.spec["completion_window"],
            metadata={"qup_submission": submission, "task": task},
        )
        self.o.cache.set_batch(submission, batch.id)
        self.o.stats.update(batches_submitted=1, batch_requests=len(new))
        print(f"batch: submitted {batch.id} with {len(new)} requests")
        return {"submission": submission, "batch_id": batch.id, "task": task, "template": template_id, "items": items}

    async def _collect(self, s: dict, reserved: dict) -> dict:
        """Poll one batch to its end and put what it answered into the cache."""
        while True:
            batch = await self.client.batches.retrieve(s["batch_id"])
            if batch.status in TERMINAL:
                break
            counts = batch.request_counts
            done = f"{counts.completed + counts.failed}/{counts.total}" if counts else "?"
            print(f"batch {batch.id}: {batch.status}, {done} done; next look in {self.spec['poll_s']:g} s")
            await asyncio.sleep(self.spec["poll_s"])
        item_ids = dict(s["items"])
        answers = {}
        for line in await self._lines(batch.output_file_id):
            key, response = line.get("custom_id"), line.get("response") or {}
            if key not in item_ids:
                continue
            if response.get("status_code") != 200 or line.get("error"):
                self.failures[f"HTTP {response.get('status_code')}"] += 1
                continue
            record = record_of(response.get("body") or {})
            self.o.cache.put(
                key,
                item_id=item_ids[key],
                task=s["task"],
                template=s["template"],
                model=self.o.spec["model"],
                response=record,
            )
            answers[key] = record
            self.o.budget.settle(reserved.pop(key, 0.0), self.o.cost_of(record))
        for line in await self._lines(batch.error_file_id):
            status = (line.get("response") or {}).get("status_code")
            code = (line.get("error") or {}).get("code")
            self.failures[f"HTTP {status}" if status else f"error {code}"] += 1
        missing = len(item_ids) - len(answers)
        print(
            f"batch {batch.id}: {batch.status}; {len(answers)} answered, {missing} to send one by one"
            + (f" ({dict(self.failures)})" if self.failures else "")
        )
        self.o.cache.finish_submission(s["submission"], batch.status)
        self.o.stats.update(batch_answered=len(answers), batch_unanswered=missing)
        return answers

    async def _lines(self, file_id: str | None) -> list[dict]:
        if not file_id:
            return []
        content = await self.client.files.content(file_id)
        return [json.loads(line) for line in content.text.splitlines() if line.strip()]
