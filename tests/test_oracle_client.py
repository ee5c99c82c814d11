"""The OpenAI-compatible oracle client: templates, cache keys, Retry-After and the config check on
their own; then retries, resume and concurrency against a real vLLM server (tests/vllm_server.py)
behind the tests' fault-injecting proxy (tests/fault_proxy.py), counting what the server saw."""

import copy
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scripts.analysis.retention import retention
from scripts.backends.oracles import oracle
from scripts.backends.oracles.openai_client import OpenAIOracle, parse, retry_after_s
from scripts.backends.oracles.prompts import OracleError, load_template
from scripts.data.streams import build_stream
from scripts.infrastructure.study_config import ConfigError, check
from scripts.organism import word_problems as wp

import vllm_server
from fault_proxy import Fault, FaultProxy, ident_of

REPO = Path(__file__).resolve().parents[1]
PROMPTS = {t: str(REPO / "prompts" / f"{t}.v1.md") for t in ("refine", "synthesize", "style_align", "judge")}
KEY_ENV = "QUP_TEST_ORACLE_KEY"


def items(n: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        g = wp.sample_graph(rng, rng.randint(2, 3), 60)
        out.append(
            {
                "id": f"p{i}",
                "problem": wp.problem_text(g),
                "answer": str(g.answer),
                "trace": wp.native_solution(g, random.Random(i), slip=0.3),
                "graph": g.to_json(),
            }
        )
    return out


def api_spec(base_url: str | None = "http://127.0.0.1:9/v1", **kw) -> dict:
    spec = {
        "backend": "openai",
        "base_url": base_url,
        "model": vllm_server.MODEL_NAME,
        "api_key_env": KEY_ENV,
        "temperature": 1.0,
        "top_p": 1.0,
        "max_tokens": 16,
        "seed": None,
        "extra": {},
        "concurrency": 4,
        "timeout_s": 30,
        "max_attempts": 4,
        "price_per_million_input_tokens": 1.0,
        "price_per_million_output_tokens": 4.0,
        "prompts": PROMPTS,
    }
    spec.update(kw)
    return spec


# ---- without a server --------------------------------------------------------------------------


def test_prompt_templates_carry_their_version_and_fill_every_field():
    it = {**items(1)[0], "source_trace": "S-TRACE", "rewrite": "R-TRACE"}
    for task, path in PROMPTS.items():
        t = load_template(path)
        assert t.id == f"{task}.v1"
        messages = t.render(it)
        assert [m["role"] for m in messages] == ["system", "user"]
        text = "\n".join(m["content"] for m in messages)
        assert "{{" not in text and "<!--" not in text and it["problem"] in text
        assert "\\boxed{" in text  # every task asks for a boxed final answer or score
    judge = "\n".join(m["content"] for m in load_template(PROMPTS["judge"]).render(it))
    assert "S-TRACE" in judge and "R-TRACE" in judge and "formatting" in judge.lower()
    style = load_template(PROMPTS["style_align"]).render(it)[1]["content"]
    for kept in ("wording", "notation", "spacing", "granularity", "layout", "order"):
        assert kept in style.lower()
    with pytest.raises(OracleError, match="trace"):
        load_template(PROMPTS["refine"]).render({"id": "x", "problem": "p"})


def test_a_template_file_without_a_version_is_refused(tmp_path):
    (tmp_path / "refine.md").write_text("<!-- role: user -->\nhi {{problem}}\n")
    with pytest.raises(OracleError, match="v<version>"):
        load_template(tmp_path / "refine.md")


def test_cache_key_follows_what_determines_the_answer_and_not_the_server_url(tmp_path):
    it = items(1)[0]

    def key(spec, item=it, prompts=None):
        o = OpenAIOracle({**spec, "prompts": prompts or PROMPTS})
        t = o.template("refine")
        return o.key("refine", t, t.render(item), item)

    base = key(api_spec())
    assert key(api_spec("http://elsewhere:8000/v1")) == base
    assert key(api_spec(temperature=1)) == base  # 1 and 1.0 are one value
    assert key(api_spec(model="other")) != base
    assert key(api_spec(temperature=0.7)) != base
    assert key(api_spec(max_tokens=17)) != base
    assert key(api_spec(extra={"top_k": 5})) != base
    assert key(api_spec(), {**it, "id": "other"}) != base
    assert key(api_spec(), {**it, "trace": it["trace"] + " "}) != base
    v2 = tmp_path / "refine.v2.md"
    v2.write_text(Path(PROMPTS["refine"]).read_text())  # same text, new version
    assert key(api_spec(), prompts={**PROMPTS, "refine": str(v2)}) != base


def test_retry_after_headers_in_seconds_milliseconds_or_as_a_date():
    from email.utils import formatdate

    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after": "1.5"}) == 1.5
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 8 <= retry_after_s({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert retry_after_s({"retry-after": "soon"}) is None and retry_after_s({}) is None


def test_replies_without_a_boxed_answer_or_a_score_are_rejected_with_their_reason():
    r = {"content": "the answer is 4", "finish_reason": "stop", "prompt_tokens": 10, "completion_tokens": 5}
    assert parse("refine", r).reason == "no boxed answer"
    assert parse("refine", {**r, "finish_reason": "length"}).reason == "no boxed answer (cut off at max_tokens)"
    ok = parse("synthesize", {**r, "content": "so \\boxed{4}."}, cached=True)
    assert ok.trace == "so \\boxed{4}." and ok.cached and ok.prompt_tokens == 10
    assert parse("judge", {**r, "content": "Same steps. \\boxed{4}"}).score == 4.0
    assert parse("judge", {**r, "content": "\\boxed{7}"}).score is None
    assert parse("judge", {**r, "content": ""}).reason == "empty response"


def config_with_api_oracle() -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["oracles"]["gpt"] = {"backend": "openai", "model": "gpt-5.2", "api_key_env": "QUP_NO_SUCH_KEY_VAR"}
    validate(config, str(REPO / "schemas" / "config.schema.yaml"))
    return config


def test_a_missing_api_key_fails_the_config_check_naming_the_variable_only_when_a_stream_uses_it(monkeypatch):
    monkeypatch.chdir(REPO)
    config = config_with_api_oracle()
    check(config, environ={})  # defined but unused: no key needed
    config["streams"]["oracle_refined"]["oracle"] = "gpt"
    with pytest.raises(ConfigError, match=r"oracles\.gpt\.api_key_env.*QUP_NO_SUCH_KEY_VAR"):
        check(config, environ={})
    check(config, environ={"QUP_NO_SUCH_KEY_VAR": "sk-x"})
    bad = copy.deepcopy(config)
    bad["oracles"]["gpt"]["model"] = None
    with pytest.raises(ConfigError, match=r"oracles\.gpt\.model"):
        check(bad, environ={"QUP_NO_SUCH_KEY_VAR": "sk-x"})
    bad = copy.deepcopy(config)
    bad["oracles"]["gpt"]["prompts"]["refine"] = "prompts/missing.v1.md"
    with pytest.raises(ConfigError, match=r"oracles\.gpt\.prompts\.refine"):
        check(bad, environ={"QUP_NO_SUCH_KEY_VAR": "sk-x"})


def test_a_missing_api_key_stops_snakemake_before_any_job(tmp_path):
    cfg = tmp_path / "gpt.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "oracles": {"gpt": {"backend": "openai", "model": "gpt-5.2", "api_key_env": "QUP_NO_SUCH_KEY_VAR"}},
                "streams": {"oracle_refined": {"kind": "oracle", "task": "refine", "oracle": "gpt"}},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "QUP_NO_SUCH_KEY_VAR"}
    run = subprocess.run(
        [str(REPO / ".venv" / "bin" / "snakemake"), "-n", "--cores", "1", "--configfile", "config.yaml", str(cfg)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    assert "QUP_NO_SUCH_KEY_VAR" in run.stdout + run.stderr
    assert "oracles.gpt.api_key_env" in run.stdout + run.stderr


def test_builtin_judge_scores_retention_of_step_results_ignoring_format():
    its = items(20)
    builtin = oracle({"backend": "builtin"})
    mean = {}
    for task in ("refine", "style_align", "synthesize"):
        outs = builtin.run(task, its)
        pairs = [
            {
                "id": it["id"],
                "problem": it["problem"],
                "source_trace": it["trace"],
                "rewrite": o.trace,
                "graph": it["graph"],
            }
            for it, o in zip(its, outs)
        ]
        scores = [v.score for v in builtin.run("judge", pairs)]
        assert all(1.0 <= s <= 5.0 for s in scores)
        mean[task] = sum(scores) / len(scores)
    # refine changes only notation (ignored), synthesis fuses steps (their results are lost)
    assert mean["refine"] == mean["style_align"] == 5.0 > mean["synthesize"]
    unrelated = [
        {
            "id": "u",
            "problem": its[0]["problem"],
            "source_trace": its[0]["trace"],
            "rewrite": "I do not know.",
            "graph": its[0]["graph"],
        }
    ]
    assert builtin.run("judge", unrelated)[0].score == 1.0


def test_retention_summary_with_the_builtin_judge():
    its = items(10)
    stream, _, usage = build_stream(
        "synth", {"kind": "oracle", "task": "synthesize"}, its, {"backend": "builtin"}, 3, 1
    )
    records, summary = retention(stream, {it["id"]: it["graph"] for it in its}, {"backend": "builtin"}, None)
    assert usage["backend"] == "builtin" and len(records) == len(stream) == 10
    assert summary["judged"] == 10 and summary["unscored"] == 0
    assert 1 <= summary["judge_score"]["ci95_low"] <= summary["judge_score"]["mean"] < 5
    assert 0 < summary["edit_similarity"]["mean"] < 0.8


# ---- against a real vLLM server, through the fault proxy ---------------------------------------


@pytest.fixture
def server(openai_server):
    return openai_server.srv  # conftest: one vLLM OpenAI server per test session


@pytest.fixture
def key(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, server.api_key)
    return server.api_key


def run_client(spec, task, its, cache):
    o = OpenAIOracle(spec, cache)
    return o, o.run(task, its)


def idents(spec, task, its):
    o = OpenAIOracle(spec)
    return [ident_of(o.render(task, it)) for it in its]


def test_a_real_server_answers_and_a_rerun_sends_nothing_again(server, key, tmp_path, capsys):
    its, cache = items(6), str(tmp_path / "cache.sqlite")
    with FaultProxy(server.address) as proxy:
        spec = api_spec(proxy.url)
        o, outs = run_client(spec, "refine", its, cache)
        assert len(outs) == 6 and not any(x.cached for x in outs)
        u = o.usage()
        assert (u["requests_sent"], u["finished"], u["cached"], u["failed"]) == (6, 6, 0, 0)
        assert u["prompt_tokens"] > 6 * 50 and 0 < u["completion_tokens"] <= 6 * 16
        assert u["estimated_cost"] == pytest.approx((u["prompt_tokens"] + 4 * u["completion_tokens"]) / 1e6)
        assert sorted(proxy.answered.values()) == [1] * 6
        assert set(proxy.received) == set(idents(spec, "refine", its))
        again, outs2 = run_client(spec, "refine", its, cache)
        assert sum(proxy.received.values()) == 6  # nothing sent the second time
        u2 = again.usage()
        assert (u2["requests_sent"], u2["cached"], u2["this_run"]["prompt_tokens"]) == (0, 6, 0)
        assert u2["prompt_tokens"] == u["prompt_tokens"]  # the stream's cost still counts them
        assert [x.reason for x in outs2] == [x.reason for x in outs] and all(x.cached for x in outs2)
    # the key went to the server (it requires it) but into no file or log
    assert proxy.auth_headers == {f"Bearer {key}": 6}
    assert key.encode() not in Path(cache).read_bytes()
    for side in Path(cache).parent.glob("cache.sqlite*"):
        assert key.encode() not in side.read_bytes()
    captured = capsys.readouterr()
    assert key not in captured.out + captured.err


def test_a_refused_key_stops_the_run_naming_the_variable_not_the_key(server, monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-abcdef")
    with pytest.raises(OracleError) as err:
        run_client(api_spec(server.url), "refine", items(3), str(tmp_path / "c.sqlite"))
    assert "401" in str(err.value) and KEY_ENV in str(err.value) and "sk-wrong" not in str(err.value)


def test_429_with_retry_after_is_honoured_then_the_item_succeeds(server, key, tmp_path):
    its = items(3)
    policy = lambda ident, n: Fault("429", retry_after=1.0) if n == 1 else None  # noqa: E731
    with FaultProxy(server.address, policy=policy) as proxy:
        o, outs = run_client(api_spec(proxy.url), "refine", its, str(tmp_path / "c.sqlite"))
    assert o.usage()["failed"] == 0 and o.usage()["retries"] == 3
    for ident, times in proxy.arrivals.items():
        assert len(times) == 2 and times[1] - times[0] >= 1.0  # waited what the server asked
        assert proxy.answered[ident] == 1


def test_500s_stalls_and_dropped_connections_are_retried_with_backoff(server, key, tmp_path):
    its = items(4)
    plan = {1: Fault("500"), 2: Fault("stall", seconds=12.0), 3: Fault("drop")}
    with FaultProxy(server.address, policy=lambda ident, n: plan.get(n)) as proxy:
        t0 = time.monotonic()
        o, outs = run_client(
            api_spec(proxy.url, timeout_s=4.0, max_attempts=4), "refine", its, str(tmp_path / "c.sqlite")
        )
        assert time.monotonic() - t0 < 12  # gave up on the stalled attempt after its timeout
    u = o.usage()
    assert (u["failed"], u["finished"], u["requests_sent"], u["retries"]) == (0, 4, 16, 12)
    assert proxy.faults == {"500": 4, "stall": 4, "drop": 4}
    assert all(n == 4 for n in proxy.received.values()) and all(n == 1 for n in proxy.forwarded.values())


def test_an_item_that_keeps_failing_is_recorded_with_its_reason_and_retried_next_run(server, key, tmp_path):
    its, cache = items(5), str(tmp_path / "c.sqlite")
    spec = api_spec(None, max_attempts=3)
    doomed = idents(spec, "refine", its)[2]
    with FaultProxy(server.address, policy=lambda ident, n: Fault("500") if ident == doomed else None) as proxy:
        o, outs = run_client({**spec, "base_url": proxy.url}, "refine", its, cache)
    assert outs[2].trace is None and outs[2].reason == "request failed after 3 attempts: HTTP 500"
    assert proxy.received[doomed] == 3 and proxy.forwarded[doomed] == 0
    assert o.usage()["failed_reasons"] == {outs[2].reason: 1} and o.usage()["finished"] == 4
    assert all(x.reason != outs[2].reason for i, x in enumerate(outs) if i != 2)  # the run went on
    with FaultProxy(server.address) as proxy:  # the server recovered: only the failed item is sent
        o, outs = run_client({**spec, "base_url": proxy.url}, "refine", its, cache)
    assert dict(proxy.received) == {doomed: 1} and o.usage()["cached"] == 4


def test_a_bad_request_fails_its_item_at_once(server, key, tmp_path):
    # a real 400 from vLLM: more completion tokens than the model's context holds
    o, outs = run_client(
        api_spec(server.url, max_tokens=vllm_server.MAX_MODEL_LEN * 2), "refine", items(2), str(tmp_path / "c.sqlite")
    )
    assert all(x.trace is None and x.reason.startswith("request failed after 1 attempt: HTTP 400") for x in outs)
    assert o.usage()["requests_sent"] == 2


def test_a_changed_prompt_re_sends_only_the_items_whose_prompt_changed(server, key, tmp_path):
    its, cache = items(5), str(tmp_path / "c.sqlite")
    with FaultProxy(server.address) as proxy:
        spec = api_spec(proxy.url)
        run_client(spec, "style_align", its, cache)
        edited = [dict(it) for it in its]
        edited[3]["trace"] = edited[3]["trace"].replace(".", " .", 1)
        proxy.reset()
        run_client(spec, "style_align", edited, cache)
        assert list(proxy.received) == [idents(spec, "style_align", edited)[3]]
        v2 = tmp_path / "style_align.v2.md"
        v2.write_text(Path(PROMPTS["style_align"]).read_text().replace("Repair the logic", "Fix the logic"))
        proxy.reset()
        o, _ = run_client({**spec, "prompts": {**PROMPTS, "style_align": str(v2)}}, "style_align", edited, cache)
        assert sum(proxy.received.values()) == 5 and o.usage()["cached"] == 0


def test_no_more_requests_in_flight_than_the_concurrency_limit(server, key, tmp_path):
    its, latency = items(12), 0.5
    with FaultProxy(server.address, latency_s=latency) as proxy:
        t0 = time.monotonic()
        o, _ = run_client(api_spec(proxy.url, concurrency=4), "synthesize", its, str(tmp_path / "c.sqlite"))
        wall = time.monotonic() - t0
    assert proxy.max_in_flight == 4 and o.usage()["finished"] == 12
    assert wall < 12 * latency  # overlapped: one at a time cannot take less than the latencies' sum


RUNNER = """
import json, sys
from scripts.backends.oracles.openai_client import OpenAIOracle
spec, its, cache = json.load(open(sys.argv[1]))
OpenAIOracle(spec, cache).run("refine", its)
"""


def test_a_killed_run_resumes_without_re_sending_a_finished_request(server, key, tmp_path):
    n, first = 12, 6
    its, cache = items(n), str(tmp_path / "c.sqlite")
    passed = {"n": 0, "hold": True}

    def policy(ident, k):  # let `first` requests through, then hold every other one unanswered
        if passed["hold"] and passed["n"] >= first:
            return Fault("stall", seconds=120)
        passed["n"] += 1
        return None

    with FaultProxy(server.address, policy=policy) as proxy:
        spec = api_spec(proxy.url, concurrency=3)
        args = tmp_path / "args.json"
        args.write_text(json.dumps([spec, its, cache]))
        proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(args)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and cached_rows(cache) < first:
            assert proc.poll() is None, "the client exited before it was killed"
            time.sleep(0.1)
        time.sleep(0.3)  # held requests are in flight, none will finish
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = set(proxy.answered)
        assert cached_rows(cache) == len(before) == first  # every answered request was committed
        passed["hold"] = False
        proxy.reset()
        o, outs = run_client(spec, "refine", its, cache)
    assert not before & set(proxy.received)  # no finished request sent again
    assert set(proxy.answered) | before == set(idents(spec, "refine", its))
    assert sum(proxy.answered.values()) + len(before) == n  # each item answered exactly once overall
    assert o.usage()["cached"] == first and len(outs) == n


def cached_rows(path: str) -> int:
    if not Path(path).exists():
        return 0
    with sqlite3.connect(path, timeout=10) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        except sqlite3.OperationalError:  # table not created yet
            return 0


def test_streams_and_retention_through_the_api_oracle_count_rejections_and_usage(server, key, tmp_path):
    its, cache = items(4), str(tmp_path / "c.sqlite")
    spec = api_spec(server.url)
    kept, rejected, usage = build_stream("oracle_refined", {"kind": "oracle", "task": "refine"}, its, spec, 3, 1, cache)
    assert len(kept) + len(rejected) == 4 and usage["finished"] == 4 and usage["model"] == spec["model"]
    # the tiny student writes junk: whatever it wrote is kept out with a reason
    assert all(
        r["reason"].startswith(("no boxed answer", "answer does not verify", "empty response")) for r in rejected
    )
    fake_stream = [
        {
            "id": it["id"],
            "problem": it["problem"],
            "source_trace": it["trace"],
            "trace": it["trace"].replace("\n", "\n\n"),
        }
        for it in its
    ]
    records, summary = retention(fake_stream, {}, spec, cache)
    assert summary["oracle"]["finished"] == 4 and summary["judged"] + summary["unscored"] == 4
    assert all(0.9 < r["edit_similarity"] < 1 for r in records)
