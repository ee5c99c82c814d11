"""The oracle client's three targets, measured (prints a table; exits 1 if one is missed):

1. concurrency: with 200 ms of injected latency per request, N requests at concurrency 64 finish
   at least 20x faster than one at a time. Measured against the real vLLM server (the tiny
   student, as in the tests) behind the fault proxy, and again against the proxy's canned
   answers: the client alone, which is what the target is about. The first number also holds
   the server's own compute, on the same 2 cores as the client (and whatever else runs there),
   so it is shown but not gated on;
2. resume: a run killed (SIGKILL) once about 50% of the items are cached, then restarted,
   re-sends 0 finished requests (counted by the proxy: requests for items that were in the
   cache before the kill);
3. cache: a lookup costs under 1 ms per item with 100k items cached (single-key lookups, and
   the client's own path: render, key, batched lookup and parse of 100k cached items).

    .venv/bin/python benchmarks/oracle_client.py [--items 128] [--model DIR]

Needs `.venv-vllm` (`make test` builds it). About 3 minutes on 2 cores.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from test_oracle_client import KEY_ENV, RUNNER, api_spec, items  # noqa: E402 -- the tests' items and spec

from scripts.backends.oracles.cache import OracleCache  # noqa: E402
from scripts.backends.oracles.openai_client import OpenAIOracle  # noqa: E402

import vllm_server  # noqa: E402
from fault_proxy import FaultProxy, ident_of  # noqa: E402


def spec(url: str, **kw) -> dict:
    """The tests' API oracle spec, with the benchmark's concurrency and patience."""
    return api_spec(url, **{"max_tokens": 8, "concurrency": 64, "timeout_s": 120, **kw})


def timed_run(url: str, concurrency: int, its: list[dict]) -> float:
    o = OpenAIOracle(spec(url, concurrency=concurrency), None)  # in-memory cache: every item is sent
    t0 = time.perf_counter()
    outs = o.run("synthesize", its)
    wall = time.perf_counter() - t0
    assert o.usage()["finished"] == len(its), o.usage()
    assert len(outs) == len(its)
    return wall


def concurrency_target(server, n: int) -> list[tuple[str, float, str]]:
    rows = []
    its = items(n)
    for label, upstream in (("vLLM server", server.address), ("canned answers", None)):
        with FaultProxy(upstream, latency_s=0.2) as proxy:
            timed_run(proxy.url, 8, its[:8])  # warm-up (connections, server compile paths)
            seq = timed_run(proxy.url, 1, its)
            par = timed_run(proxy.url, 64, its)
            peak = proxy.max_in_flight
        rows.append((f"concurrency, {label}: {n} requests one at a time", seq, "s"))
        rows.append((f"concurrency, {label}: {n} requests at concurrency 64 (peak in flight {peak})", par, "s"))
        rows.append((f"concurrency, {label}: speed-up (target >= 20)", seq / par, "x"))
    return rows


def cached_ids(path: str) -> set[str]:
    if not Path(path).exists():
        return set()
    with sqlite3.connect(path, timeout=10) as db:
        try:
            return {r[0] for r in db.execute("SELECT item_id FROM responses")}
        except sqlite3.OperationalError:
            return set()


def resume_target(server, n: int, tmp: Path) -> list[tuple[str, float, str]]:
    its, cache = items(n, seed=12), str(tmp / "resume.sqlite")
    with FaultProxy(server.address, latency_s=0.2) as proxy:
        s = spec(proxy.url, concurrency=8)
        ident = {it["id"]: ident_of(OpenAIOracle(s).render("refine", it)) for it in its}
        args = tmp / "args.json"
        args.write_text(json.dumps([s, its, cache]))
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(args)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        while len(cached_ids(cache)) < n // 2 and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = cached_ids(cache)
        answered_before = set(proxy.answered)
        proxy.reset()
        o = OpenAIOracle(s, cache)
        o.run("refine", its)
        resent_finished = sum(proxy.received[ident[i]] for i in done)
        in_flight_lost = len(answered_before - {ident[i] for i in done})
    return [
        (f"resume: items cached when killed (of {n})", len(done), ""),
        ("resume: answered by the server but killed before the client kept them (re-sent)", in_flight_lost, ""),
        ("resume: requests sent after restart", o.usage()["requests_sent"], ""),
        ("resume: finished requests re-sent after restart (target 0)", resent_finished, ""),
    ]


def cache_target(tmp: Path, n: int = 100_000) -> list[tuple[str, float, str]]:
    its = items(n, seed=13)
    s = spec("http://127.0.0.1:9/v1")
    o = OpenAIOracle(s, str(tmp / "cache.sqlite"))
    t = o.template("refine")
    keys = []
    rows = []
    for it in its:
        k = o.key("refine", t, t.render(it), it)
        keys.append(k)
        rows.append(
            (
                k,
                {"item_id": it["id"], "task": "refine", "template": t.id, "model": s["model"]},
                {
                    "content": "x \\boxed{1}",
                    "finish_reason": "stop",
                    "prompt_tokens": 100,
                    "completion_tokens": 10,
                    "model": s["model"],
                },
            )
        )
    o.cache.put_many(rows)
    o.cache.close()
    cache = OracleCache(tmp / "cache.sqlite")
    probe = random.Random(0).sample(keys, 10_000)
    t0 = time.perf_counter()
    assert all(cache.get(k) is not None for k in probe)
    single = (time.perf_counter() - t0) / len(probe)
    client = OpenAIOracle(s, str(tmp / "cache.sqlite"))
    t0 = time.perf_counter()
    outs = asyncio.run(client.arun("refine", its))
    full = (time.perf_counter() - t0) / n
    assert client.usage()["cached"] == n and client.usage()["requests_sent"] == 0 and len(outs) == n
    return [
        (f"cache: single-key lookup, {n:,} items cached (target < 1)", single * 1e3, "ms/item"),
        (
            f"cache: client run over {n:,} cached items, render + key + lookup + parse (target < 1)",
            full * 1e3,
            "ms/item",
        ),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=128, help="requests per concurrency measurement")
    ap.add_argument("--model", help="a saved model folder to serve (default: build the tests' tiny student)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = cache_target(tmp)
        model = Path(a.model) if a.model else vllm_server.build_student(tmp / "student")
        proc, server = vllm_server.start(model, tmp)
        os.environ[KEY_ENV] = server.api_key
        try:
            rows += concurrency_target(server, a.items)
            rows += resume_target(server, 64, tmp)
        finally:
            vllm_server.stop(proc)
    width = max(len(r[0]) for r in rows)
    for label, value, unit in rows:
        print(
            f"{label:<{width}}  {value:10.3f} {unit}"
            if isinstance(value, float)
            else f"{label:<{width}}  {value:10d} {unit}"
        )
    values = {label: value for label, value, _ in rows}
    ok = (
        values["concurrency, canned answers: speed-up (target >= 20)"] >= 20
        and values["resume: finished requests re-sent after restart (target 0)"] == 0
        and all(v < 1 for k, v in values.items() if k.startswith("cache:"))
    )
    print("targets met" if ok else "a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
