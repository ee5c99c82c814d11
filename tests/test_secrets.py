"""No file of a run ever holds the API key: the oracle stages run through snakemake with a known
fake key against a real OpenAI-compatible server (vLLM's CPU server, tests/vllm_server.py, which
refuses any other key), and every file under results/ and .snakemake/ is searched for it.

The served student is tiny and writes junk, so a proxy of the tests' own (tests/fault_proxy.py)
forwards each request to the server, which checks the key and answers, then replaces the answer
with what a capable oracle would send: the student's own (correct) trace for a refinement, a
score for the judge. The stream then keeps its traces and the whole DAG downstream of it runs:
retention, reward, adaptation cost, training, evaluation, report and manifest.
(That a key pasted into the config is refused without being printed is in test_bad_inputs.py.)
"""

import json
import shutil

import pytest
import yaml

from conftest import REPO, snakemake
from fault_proxy import FaultProxy

pytestmark = pytest.mark.e2e

KEY_VAR = "QUP_SECRET_TEST_KEY"
PROMPTS = {t: str(REPO / "prompts" / f"{t}.v1.md") for t in ("refine", "synthesize", "style_align", "judge")}


class CapableOracle(FaultProxy):
    """Forwards to the real server, then answers a refinement with the student's trace and a judge
    request with a score."""

    async def _forward(self, method, path, headers, body, chat):
        status, resp_headers, resp_body = await super()._forward(method, path, headers, body, chat)
        if not (chat and status == 200):
            return status, resp_headers, resp_body
        user = json.loads(body)["messages"][-1]["content"]
        if "Student's solution:\n" in user:
            content = user.rsplit("Student's solution:\n", 1)[1]
        elif "Rewritten solution:" in user:
            content = "The same steps and results. \\boxed{5}"
        else:
            return status, resp_headers, resp_body
        reply = json.loads(resp_body)
        reply["choices"][0]["message"]["content"] = content
        reply["choices"][0]["finish_reason"] = "stop"
        return status, resp_headers, json.dumps(reply).encode()


@pytest.fixture
def server(openai_server):
    return openai_server.srv  # conftest: one vLLM OpenAI server per test session


def test_no_log_manifest_report_or_cache_file_holds_the_api_key(server, ci_run, tmp_path, monkeypatch):
    key = server.api_key
    monkeypatch.setenv(KEY_VAR, key)
    work = tmp_path / "work"
    shutil.copytree(ci_run, work, symlinks=True)
    with CapableOracle(server.address) as proxy:
        api = {
            "backend": "openai",
            "base_url": proxy.url,
            "model": server.model,
            "api_key_env": KEY_VAR,
            "max_tokens": 8,
            "concurrency": 4,
            "timeout_s": 120,
            "max_attempts": 2,
            "prompts": PROMPTS,
        }
        edit = yaml.safe_dump({"oracles": {"api": api}, "streams": {"oracle_refined": {"oracle": "api"}}})
        out = snakemake(work, check=False, edit=edit)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    # the key went out with every request (the server refuses any other) ...
    assert set(proxy.auth_headers) == {f"Bearer {key}"} and sum(proxy.answered.values()) >= 2
    stream = json.loads((work / "results/streams/tiny/oracle_refined.summary.json").read_text())
    assert stream["kept"] > 0 and stream["oracle"]["requests_sent"] > 0 and stream["oracle"]["backend"] == "openai"
    assert json.loads((work / "results/retention/tiny/oracle_refined.json").read_text())["judged"] > 0
    assert (work / "results/oracle_cache/api.sqlite").exists()
    manifest = (work / "results/report/manifest.json").read_text()
    assert KEY_VAR in manifest  # the config is in the manifest: the variable's name, not its value
    # ... and into no file of the run, nor onto the console
    files = [p for d in ("results", ".snakemake") for p in (work / d).rglob("*") if p.is_file()]
    assert len(files) > 100
    assert [str(p.relative_to(work)) for p in files if key.encode() in p.read_bytes()] == []
    assert key not in out.stdout + out.stderr
