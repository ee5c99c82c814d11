"""Knowing the bill before paying it, against real local servers: the estimate against the usage
vLLM's OpenAI server reports for the same items; the budget caps (the stage stops naming the
key, the cache keeps what was answered, a rerun after raising the cap sends nothing again,
counted at the server by the fault proxy); the Batch API path end to end against a local
endpoint built on vLLM's offline batch runner (tests/batch_endpoint.py), with a kill between
submit and fetch; and the ``snakemake oracle_estimate`` target."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from batch_endpoint import BatchEndpoint
from test_oracle_client import KEY_ENV, PROMPTS, api_spec, items

from scripts.backends.oracles.base import answer_spec
from scripts.backends.oracles.budget import BudgetReached, call_spec, spent
from scripts.backends.oracles.cache import OracleCache
from scripts.backends.oracles.openai_client import OpenAIOracle
from scripts.backends.oracles.prompts import OracleError

from conftest import markdown_rows, run_stage, snakemake
from fault_proxy import FaultProxy, ident_of

REPO = Path(__file__).resolve().parents[1]
MAX_TOKENS = 16
PRICES = {"price_per_million_input_tokens": 1000.0, "price_per_million_output_tokens": 4000.0}


class Namespace(dict):
    __getattr__ = dict.__getitem__


@pytest.fixture
def server(openai_server):
    """The real vLLM OpenAI server (conftest: one per test session), its model folder and the
    chat template it applies, which the estimate reads to count tokens as the server does."""
    return openai_server


@pytest.fixture
def key(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, server.srv.api_key)
    return server.srv.api_key


def counted(server, url, **kw) -> dict:
    """An oracle spec whose estimate counts with the served model's tokenizer and template."""
    estimate = {"tokenizer": str(server.model), "chat_template": str(server.template), "judge_output_tokens": 64}
    return api_spec(url, max_tokens=MAX_TOKENS, estimate=estimate, **PRICES, **kw)


def cache_rows(path) -> list[dict]:
    with sqlite3.connect(path) as db:
        return [json.loads(r) for (r,) in db.execute("SELECT response FROM responses")]


# ---- the estimate against what the server reports ---------------------------------------------


def test_the_estimate_matches_the_usage_the_server_reports_for_the_same_items(server, key, tmp_path):
    its = items(16)
    judged = [{**it, "source_trace": it["trace"], "rewrite": it["trace"]} for it in its]
    report = {}
    for task, batch in (("refine", its), ("judge", judged)):
        spec = counted(server, server.srv.url)
        estimate = OpenAIOracle(spec).estimate(task, batch)
        rough = OpenAIOracle(api_spec(server.srv.url, max_tokens=MAX_TOKENS, **PRICES)).estimate(task, batch)
        o = OpenAIOracle(spec, str(tmp_path / f"{task}.sqlite"))
        o.run(task, batch)
        used = o.usage()["this_run"]
        assert o.usage()["finished"] == 16
        # per item too: each request's prompt tokens as the server counted them
        rows = OracleCache(tmp_path / f"{task}.sqlite")
        t = o.template(task)
        per_item = [rows.get(o.key(task, t, t.render(it), it))["prompt_tokens"] for it in batch]
        assert per_item == [o.counter.prompt(t.render(it)) for it in batch]
        assert estimate["prompt_tokens"] == used["prompt_tokens"]
        assert estimate["cost"] >= used["estimated_cost"] > 0  # completions are capped at max_tokens
        assert used["completion_tokens"] <= estimate["completion_tokens"] == 16 * MAX_TOKENS  # capped
        report[task] = {
            "prompt_tokens": (estimate["prompt_tokens"], used["prompt_tokens"]),
            "prompt_tokens_chars_per_token_4": (rough["prompt_tokens"], used["prompt_tokens"]),
            "completion_tokens": (estimate["completion_tokens"], used["completion_tokens"]),
            "cost": (estimate["cost"], used["estimated_cost"]),
        }
        # (no check of the rule of thumb: the tiny student's 320-token vocabulary has about 1.4
        # characters per token, real ones about 4; the printed line shows how far off it is here)
    print("estimate vs server (estimated, reported):", json.dumps(report))


# ---- budget caps -------------------------------------------------------------------------------


def stream_job(tmp: Path, config: dict, solvable: list[dict], cache: Path, name: str = "oracle_refined"):
    """The `stream` rule's job as Snakemake hands it to the stage (tests/conftest.py run_stage)."""
    (tmp / "solvable.jsonl").write_text("".join(json.dumps(r) + "\n" for r in solvable))
    spec = config["streams"][name]
    return SimpleNamespace(
        log=[str(tmp / "stream.log")],
        threads=1,
        config=config,
        wildcards=Namespace(stream=name),
        input=Namespace(solvable=str(tmp / "solvable.jsonl")),
        output=Namespace(**{k: str(tmp / f"{name}.{k}") for k in ("stream", "rejected", "summary")}),
        params=Namespace(
            spec=spec,
            oracle=answer_spec(config["oracles"][spec["oracle"]]),
            oracle_cache=str(cache),
            prompt=None,
            timeout_s=3,
            replay=None,
            code="test",
        ),
    )


def test_a_budget_cap_stops_the_stage_naming_the_key_and_a_rerun_after_raising_it_sends_nothing_again(
    server, key, tmp_path
):
    its, cache = items(12), tmp_path / "oracle_cache" / "gpt.sqlite"
    with FaultProxy(server.srv.address) as proxy:
        spec = counted(server, proxy.url, concurrency=1)
        one = OpenAIOracle(spec).estimate("refine", its[:1])["cost"]
        config = {
            "oracles": {"gpt": {**spec, "budget_usd": 4.5 * one}},
            "oracle_costs": {"budget_usd": None},
            "streams": {"oracle_refined": {"kind": "oracle", "task": "refine", "oracle": "gpt"}},
        }
        job = stream_job(tmp_path, config, its, cache)
        with pytest.raises(SystemExit):
            run_stage("streams", job)
        log = Path(job.log[0]).read_text()
        assert "error: oracle budget reached: oracles.gpt.budget_usd is" in log
        answered = set(proxy.answered)
        assert 2 <= len(answered) <= 5 and sum(proxy.received.values()) == len(answered)  # stopped, nothing lost
        assert len(cache_rows(cache)) == len(answered)  # everything answered is in the cache
        assert spent(cache, config["oracles"]["gpt"]) <= 4.5 * one  # and the cap held
        assert not Path(job.output.stream).exists()

        proxy.reset()  # the cap raised: only what was never answered goes out
        raised = call_spec({**config, "oracles": {"gpt": {**spec, "budget_usd": 100 * one}}}, "gpt", str(cache))
        o = OpenAIOracle(raised, str(cache))
        outs = o.run("refine", its)
    assert not answered & set(proxy.received)
    assert sorted(proxy.received.values()) == [1] * (12 - len(answered))
    assert set(proxy.received) | answered == {ident_of(o.render("refine", it)) for it in its}
    assert o.usage()["cached"] == len(answered) and len(outs) == 12


def test_the_runs_cap_counts_what_every_oracle_has_spent(tmp_path, monkeypatch):
    """The run's cap reads every API oracle's cache: here another oracle already spent it all, so
    not one request leaves (the endpoint is a closed port: a request would fail, not stop)."""
    monkeypatch.setenv(KEY_ENV, "sk-unused")
    folder = tmp_path / "oracle_cache"
    other = OracleCache(folder / "judge72b.sqlite")
    other.put_many(
        [
            (f"k{i}", {"item_id": f"p{i}", "task": "refine", "template": "refine.v1", "model": "m"}, r)
            for i, r in enumerate([{"prompt_tokens": 1000, "completion_tokens": 100, "content": "x"}] * 10)
        ]
    )
    spec = api_spec("http://127.0.0.1:9/v1", **PRICES)
    config = {"oracles": {"gpt": spec, "judge72b": spec}, "oracle_costs": {"budget_usd": 12.0}}
    assert spent(folder / "judge72b.sqlite", spec) == pytest.approx(14.0)  # 10 x (1000 x 1e-3 + 100 x 4e-3)
    o = OpenAIOracle(call_spec(config, "gpt", str(folder / "gpt.sqlite")), str(folder / "gpt.sqlite"))
    with pytest.raises(BudgetReached, match=r"oracle_costs\.budget_usd is 12 USD"):
        o.run("refine", items(3))
    assert o.usage()["requests_sent"] == 0
    assert isinstance(BudgetReached("x"), OracleError)  # a stage error: one clear line, no traceback


# ---- the Batch API path ------------------------------------------------------------------------

RUNNER = """
import json, sys
from scripts.backends.oracles.openai_client import OpenAIOracle
spec, its, cache = json.load(open(sys.argv[1]))
OpenAIOracle(spec, cache).run("refine", its)
"""


def batch_ids(cache) -> list:
    if not Path(cache).exists():
        return []
    with sqlite3.connect(cache, timeout=10) as db:
        try:
            return [r[0] for r in db.execute("SELECT batch_id FROM batches")]
        except sqlite3.OperationalError:
            return []


def batch_spec(server, url, **batch) -> dict:
    return counted(
        server,
        url,
        batch={
            "enabled": True,
            "poll_s": 0.5,
            "completion_window": "24h",
            "max_requests": 50000,
            "price_per_million_input_tokens": 500.0,
            "price_per_million_output_tokens": 2000.0,
            **batch,
        },
    )


def test_a_batch_survives_a_kill_between_submit_and_fetch_and_what_it_left_is_sent_one_by_one(server, key, tmp_path):
    its, cache = items(8, seed=11), str(tmp_path / "c.sqlite")
    faults = {1: "expire", 4: "expire", 6: "fail"}
    with (
        FaultProxy(server.srv.address) as proxy,
        BatchEndpoint(server.model, tmp_path / "batches", proxy.url, lambda i, _: faults.get(i)) as endpoint,
    ):
        spec = batch_spec(server, endpoint.url)
        args = tmp_path / "args.json"
        args.write_text(json.dumps([spec, its, cache]))
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(args)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(batch_ids(cache)):
            assert proc.poll() is None, "the client exited before it was killed"
            time.sleep(0.2)
        (batch_id,) = batch_ids(cache)
        assert endpoint.batches[batch_id]["status"] == "in_progress"  # submitted, not fetched
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert len(cache_rows(cache)) == 0 and endpoint.created == 1

        o = OpenAIOracle(spec, cache)  # the rerun: picks the batch up, fetches, sends the rest
        outs = o.run("refine", its)
        assert endpoint.runner_rc[batch_id] == 0
    assert endpoint.created == 1 and endpoint.uploads == 1  # never submitted again
    left = {ident_of(o.render("refine", its[i])) for i in faults}
    assert dict(proxy.received) == {i: 1 for i in left}  # expired and failed: one by one, once each
    assert len(outs) == 8 and not [x for x in outs if x.reason.startswith("request failed")]
    u = o.usage()
    assert u["batch"] == {
        "batches_submitted": 0,
        "batches_resumed": 1,
        "batch_requests": 0,
        "batch_answered": 5,
        "batch_unanswered": 3,
    }
    rows = cache_rows(cache)
    assert len(rows) == 8 and sum(bool(r.get("batch")) for r in rows) == 5
    # the batch runner counts prompt tokens as the server does, and so as the estimate does
    estimate = OpenAIOracle(spec).estimate("refine", its)
    assert estimate["prompt_tokens"] == u["prompt_tokens"]
    assert u["estimated_cost"] == pytest.approx(
        sum(
            (
                r["prompt_tokens"] * (500 if r.get("batch") else 1000)
                + r["completion_tokens"] * (2000 if r.get("batch") else 4000)
            )
            / 1e6
            for r in rows
        )
    )
    again = OpenAIOracle(spec, cache)
    again.run("refine", its)
    assert again.usage()["cached"] == 8 and endpoint.created == 1


def test_a_batch_created_before_its_id_was_recorded_is_found_by_its_tag(server, key, tmp_path):
    """A job killed between creating a batch and recording its id: the rerun finds the batch among
    the endpoint's by the tag it sent as metadata, and does not submit another; a cancelled batch
    leaves every item to be sent one by one."""
    from openai import OpenAI

    its, cache = items(3, seed=12), str(tmp_path / "c.sqlite")
    with FaultProxy(server.srv.address) as proxy, BatchEndpoint(server.model, tmp_path, proxy.url, run=False) as ep:
        spec = batch_spec(server, ep.url)
        o = OpenAIOracle(spec, cache)
        t = o.template("refine")
        keys = [o.key("refine", t, t.render(it), it) for it in its]
        o.cache.add_submission(
            "tag-1",
            task="refine",
            template=t.id,
            model=spec["model"],
            items=[[k, it["id"]] for k, it in zip(keys, its)],
        )
        client = OpenAI(base_url=ep.url, api_key=key)
        upload = client.files.create(file=("b.jsonl", b"{}\n"), purpose="batch")
        made = client.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"qup_submission": "tag-1"},
        )
        ep.batches[made.id]["status"] = "cancelled"
        outs = o.run("refine", its)
    assert ep.created == 1  # the test's own: the client submitted nothing
    assert o.usage()["batch"]["batches_resumed"] == 1
    assert sorted(proxy.received.values()) == [1, 1, 1] and len(outs) == 3
    assert OracleCache(cache).open_submissions() == []


# ---- the estimate target -----------------------------------------------------------------------


def test_snakemake_oracle_estimate_prints_the_bill_from_the_pool_before_any_sampling(tmp_path):
    api = {
        "backend": "openai",
        "model": "gpt-x",
        "api_key_env": "QUP_ESTIMATE_KEY",
        "max_tokens": 512,
        "price_per_million_input_tokens": 2.0,
        "price_per_million_output_tokens": 8.0,
        "batch": {"price_per_million_input_tokens": 1.0, "price_per_million_output_tokens": 4.0},
        "budget_usd": 5.0,
        "prompts": PROMPTS,
    }
    edit = yaml.safe_dump(
        {
            "oracles": {"gpt": api},
            "streams": {
                "oracle_refined": {"kind": "oracle", "task": "refine", "oracle": "gpt"},
                "oracle_synthesized": {"kind": "oracle", "task": "synthesize", "oracle": "gpt"},
            },
            "oracle_costs": {"solve_rate": 0.25},
        }
    )
    os.environ["QUP_ESTIMATE_KEY"] = "not-a-real-key"  # the config check wants it; nothing is sent
    try:
        out = snakemake(tmp_path / "run", "oracle_estimate", edit=edit)
    finally:
        del os.environ["QUP_ESTIMATE_KEY"]
    jobs = out.stdout + out.stderr
    assert "native_traces" not in jobs and "oracle_estimate" in jobs
    assert "# Oracle cost estimate" in out.stdout  # printed, not only written
    est = json.loads((tmp_path / "run/results/report/oracle_estimate.json").read_text())
    rows = {(r["stream"], r["task"]): r for r in est["rows"]}
    pool = sum(1 for _ in open(tmp_path / "run/results/problems/pool.jsonl"))
    assert rows["oracle_refined", "refine"]["requests"] == round(0.25 * pool)
    assert rows["oracle_refined", "judge"]["requests"] == round(0.25 * 0.9 * pool)
    assert rows["style_aligned", "style_align"]["sends"] is False  # the built-in oracle
    r = rows["oracle_refined", "refine"]
    assert r["cost"] == pytest.approx((2 * r["prompt_tokens"] + 8 * r["completion_tokens"]) / 1e6)
    assert r["batch_cost"] == pytest.approx(r["cost"] / 2)
    assert est["oracles"]["gpt"]["budget_usd"] == 5.0 and est["oracles"]["gpt"]["spent"] == 0
    table = markdown_rows((tmp_path / "run/results/report/oracle_estimate.md").read_text())
    assert ["tiny", "oracle_synthesized", "gpt", "synthesize"] == table[2][:4]
