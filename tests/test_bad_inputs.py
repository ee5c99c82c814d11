"""Bad inputs stop before the first job, naming the config key and its value; a secret is never
repeated back.

``BAD_INPUTS`` is the table: one row per class of mistake a user makes (the issue's, and those a
reading of the schema finds), each an overlay on the CI-sized config (``config.yaml`` +
``tests/configs/ci.yaml``, merged as ``--configfile`` merges them), the scratch files it needs,
the key path the message must name and the text of the value it must quote. Every row runs
the workflow's own pre-DAG steps (``refuse_secrets``, the schema, ``study_config.check``) in a
scratch working directory; the rows marked ``cli`` also run ``snakemake -n`` there, which must
exit non-zero with the key in its output and no ``results/`` folder. To add a class, add a
row.

The one check that cannot be made before the first job (a stop token of the built-in
student's tokenizer, which is learned when the student is built) is tested at that job below.
"""

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

from scripts.infrastructure import study_config
from scripts.infrastructure.config_checks import SCHEDULERS, ConfigError, secret_in

from conftest import CONFIGS, REPO, TEMPLATE, TINY, run_stage, snakemake

SCHEMA = str(REPO / "schemas" / "config.schema.yaml")
KEY_VAR = "QUP_BAD_INPUTS_KEY"  # set for the rows that use an API oracle
ENV = {KEY_VAR: "set"}
PROMPTS = {t: str(REPO / "prompts" / f"{t}.v1.md") for t in ("refine", "synthesize", "style_align", "judge")}
# Fake keys in the formats users paste (none of them real).
OPENAI_KEY = "sk-proj-" + "Tq3vX9bK2mN7pR4sW8yZ1cF5hJ6gL0dA"
HF_TOKEN = "hf_" + "kVbQpZxRtYwMnLsJdHgFcEaU1234567890"
RANDOM_KEY = "Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz"  # no prefix: a random base-62 string

ROWS = [
    {"id": f"q{i}", "problem": f"Tom has {i} apples and buys 2 more. How many?", "answer": str(i + 2)} for i in range(3)
]


def bench(path: str, columns: dict | None = None, **spec) -> dict:
    """An overlay adding a benchmark read from a local file of problems and answers (as ROWS)."""
    cols = {"solution": None, "answer": "answer", **(columns or {})}
    return {"problems": {"benchmarks": {"bench": {"source": "file", "path": path, "n": 0, "columns": cols, **spec}}}}


def tiny(**spec) -> dict:
    return {"students": {"tiny": spec}}


def arch(**spec) -> dict:
    return tiny(builtin={"architecture": spec})


def api_oracle(**spec) -> dict:
    """oracle_refined through an OpenAI-compatible oracle."""
    gpt = {"backend": "openai", "model": "gpt-5.2", "api_key_env": KEY_VAR, "prompts": PROMPTS, **spec}
    return {"oracles": {"gpt": gpt}, "streams": {"oracle_refined": {"oracle": "gpt"}}}


def model_folder(vocab: list[str]) -> dict:
    """The files of a local model folder whose fast tokenizer holds ``vocab``."""
    tokenizer = {"model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(vocab)}, "merges": []}}
    return {
        "local_model/config.json": json.dumps({"model_type": "qwen2"}),
        "local_model/tokenizer.json": json.dumps(tokenizer),
    }


@dataclass(frozen=True)
class Bad:
    what: str  # the mistake, as a user makes it
    overlay: dict  # YAML layered over the CI-sized config
    key: str  # the config key path the message names
    value: str  # text of the value the message quotes; for a secret, the value itself (never shown)
    files: dict = field(default_factory=dict)  # scratch files: name -> text, or rows written as JSONL
    secret: bool = False
    cli: bool = False  # also through `snakemake -n`


BAD_INPUTS = [
    # -- the classes that used to stop only inside a job --
    Bad("a stray brace in the prompt template", tiny(prompt_template="Problem: {problem}\nSolution: {\n"),
        "students.tiny.prompt_template", "Solution: {", cli=True),
    Bad("a literal \\boxed{} copied into the template",
        tiny(prompt_template="Problem: {problem}\nEnd with \\boxed{}.\n"), "students.tiny.prompt_template", "boxed{}"),
    Bad("a local student folder that does not exist", tiny(model="./models/my-student"),
        "students.tiny.model", "./models/my-student", cli=True),
    Bad("a student folder that holds no model", tiny(model="empty_model"),
        "students.tiny.model", "empty_model", files={"empty_model/README": "weights to come"}),
    Bad("built-in heads that do not divide the hidden size", arch(hidden_size=64, heads=3, kv_heads=1),
        "students.tiny.builtin.architecture.heads", "3", cli=True),
    Bad("key/value heads that do not divide the heads", arch(heads=4, kv_heads=3),
        "students.tiny.builtin.architecture.kv_heads", "3"),
    Bad("an odd head dimension (rotary embeddings)", arch(hidden_size=36, heads=4, kv_heads=2),
        "students.tiny.builtin.architecture", "9 dimensions per head"),
    Bad("a zero-sized architecture", arch(layers=0), "students.tiny.builtin.architecture.layers", "0"),
    Bad("a problem file that does not exist", bench("missing.jsonl"), "problems.benchmarks.bench.path",
        "missing.jsonl"),
    Bad("a malformed problem file", bench("bad.jsonl"), "problems.benchmarks.bench.path", "bad.jsonl",
        files={"bad.jsonl": '{"problem": "x", "answer": \n'}),
    Bad("a Parquet file that is not Parquet", bench("bad.parquet"), "problems.benchmarks.bench.path", "bad.parquet",
        files={"bad.parquet": "not parquet"}),
    Bad("an empty problem file", bench("empty.jsonl"), "problems.benchmarks.bench.path", "empty.jsonl",
        files={"empty.jsonl": ""}),
    Bad("a mapped column the file lacks", bench("b.jsonl", columns={"problem": "question"}),
        "problems.benchmarks.bench.columns.problem", "question", files={"b.jsonl": ROWS}),
    Bad("no row with both a problem and an answer", bench("b.jsonl", columns={"answer": "final"}),
        "problems.benchmarks.bench", "no usable rows", files={"b.jsonl": [{**r, "final": None} for r in ROWS]}),
    Bad("a stop token that is not one token of a local student's tokenizer",
        tiny(model="local_model", stop_tokens=["<|im_end|>"]), "students.tiny.stop_tokens", "<|im_end|>",
        files=model_folder(["a", "b", "<|endoftext|>"])),
    Bad("an empty stop token", tiny(stop_tokens=[""]), "students.tiny.stop_tokens", "empty string"),
    Bad("a drift reference stream that does not exist", {"adaptation_cost": {"drift": {"reference_stream": "native"}}},
        "adaptation_cost.drift.reference_stream", "native", cli=True),
    Bad("a pretraining batch not a multiple of its micro-batch",
        tiny(builtin={"pretraining": {"batch_size": 32, "micro_batch_size": 12}}),
        "students.tiny.builtin.pretraining.batch_size", "32"),
    # -- the classes that used to be accepted silently --
    Bad("a benchmark file that repeats a row", bench("dup.jsonl"), "problems.benchmarks.bench.path", "repeats",
        files={"dup.jsonl": [*ROWS, ROWS[0]]}, cli=True),
    Bad("an id column that repeats an id", bench("ids.jsonl", columns={"id": "id"}), "problems.benchmarks.bench.path",
        "'q0' 2 times", files={"ids.jsonl": [*ROWS, {**ROWS[1], "id": "q0"}]}),
    Bad("a benchmark n larger than its file", bench("b.jsonl", n=10), "problems.benchmarks.bench.n", "10",
        files={"b.jsonl": ROWS}, cli=True),
    Bad("a template whose field is written {{problem}}", tiny(prompt_template="Problem: {{problem}}\nSolution:\n"),
        "students.tiny.prompt_template", "{{problem}}"),
    Bad("a seeds list that repeats a seed", {"training": {"seeds": [0, 1, 0]}}, "training.seeds", "[0, 1, 0]"),
    Bad("two learning rates that name one run folder", {"training": {"lr": [3.0e-4, 0.0003]}}, "training.lr", "0.0003"),
    Bad("a repeated objective", {"training": {"objectives": ["sft", "sft"]}}, "training.objectives", "sft"),
    Bad("a generated benchmark with n: 0", {"problems": {"benchmarks": {"two_step": {"n": 0}}}},
        "problems.benchmarks.two_step.n", "0"),
    # -- secrets: refused, never repeated (only the last 4 characters) --
    Bad("an API key pasted into api_key_env", api_oracle(api_key_env=OPENAI_KEY), "oracles.gpt.api_key_env",
        OPENAI_KEY, secret=True, cli=True),
    Bad("an API key among the request's extra fields", api_oracle(extra={"api_key": OPENAI_KEY}),
        "oracles.gpt.extra.api_key", OPENAI_KEY, secret=True),
    Bad("a key inside the endpoint URL", api_oracle(base_url=f"https://api.example.com/v1?key={RANDOM_KEY}"),
        "oracles.gpt.base_url", RANDOM_KEY, secret=True),
    Bad("a hub token where the revision belongs", tiny(model="Qwen/Qwen2.5-Math-1.5B", revision=HF_TOKEN),
        "students.tiny.revision", HF_TOKEN, secret=True),
    Bad("a key where a number belongs (the schema would quote it)", api_oracle(seed=OPENAI_KEY), "oracles.gpt.seed",
        OPENAI_KEY, secret=True),
    # -- found by reading the schema with a user's eye --
    Bad("an api_key_env that is no variable name", api_oracle(api_key_env="my key"), "oracles.gpt.api_key_env",
        "6 characters"),
    Bad("an unset key variable", api_oracle(api_key_env="QUP_NO_SUCH_VARIABLE"), "oracles.gpt.api_key_env",
        "QUP_NO_SUCH_VARIABLE"),
    Bad("the OpenAI API without a key", api_oracle(api_key_env=None), "oracles.gpt.api_key_env", "null"),
    Bad("an endpoint that is not a URL", api_oracle(base_url="gpu-node:8000/v1"), "oracles.gpt.base_url",
        "gpu-node:8000/v1"),
    Bad("a prompt file that does not exist", api_oracle(prompts={**PROMPTS, "refine": "prompts/refine.v9.md"}),
        "oracles.gpt.prompts.refine", "refine.v9.md"),
    Bad("an oracle stream naming no oracle", {"streams": {"oracle_refined": {"oracle": "gpt"}}},
        "streams.oracle_refined.oracle", "gpt"),
    Bad("a retention judge that is no oracle", {"retention": {"judge": "gpt"}}, "retention.judge", "gpt", cli=True),
    Bad("a task set on a stream that is not an oracle stream", {"streams": {"slm_rft": {"task": "refine"}}},
        "streams.slm_rft.task", "refine"),
    Bad("a stream named like the untrained student's evaluation", {"streams": {"base": {"kind": "slm_rft"}}},
        "streams", "base"),
    Bad("a benchmark named pool", {"problems": {"benchmarks": {"pool": {"n": 5}}}}, "problems.benchmarks", "pool"),
    Bad("a student name that is no path part", {"students": {"tiny/v2": {"model": "builtin"}}}, "students", "tiny/v2"),
    Bad("a reference stream over a pool without solutions",
        {"problems": {"pool": {"source": "file", "path": "pool.jsonl", "n": 0,
                               "columns": {"solution": None, "answer": "answer"}}}},
        "streams.reference", "solution", files={"pool.jsonl": ROWS}),
    Bad("a local dataset folder that does not exist",
        {"problems": {"benchmarks": {"bench": {"source": "datasets", "path": "./data/math500", "n": 0}}}},
        "problems.benchmarks.bench.path", "./data/math500"),
    Bad("a generated set with min_steps above max_steps", {"problems": {"pool": {"min_steps": 3, "max_steps": 2}}},
        "problems.pool.min_steps", "3"),
    Bad("a built-in corpus with min_steps above max_steps", tiny(builtin={"min_steps": 3, "max_steps": 2}),
        "students.tiny.builtin.min_steps", "3"),
    Bad("a training batch not a multiple of the micro-batch", {"training": {"batch_size": [12]}},
        "training.batch_size", "12"),
    Bad("a scheduler name with a typo", {"training": {"hparams": {"lr_scheduler": "cosin"}}},
        "training.hparams.lr_scheduler", "cosin"),
    Bad("a LoRA target module the built-in student lacks",
        {"training": {"method": "lora", "lora": {"target_modules": ["q_prj"]}}}, "training.lora.target_modules",
        "q_prj"),
    Bad("a learned reward's plain template without the trace",
        {"rewards": {"rm": {"backend": "sequence_classifier", "model": "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2",
                            "prompt_format": "plain", "plain_template": "Problem: {problem}\n"}}},
        "rewards.rm.plain_template", "Problem: {problem}"),
    Bad("a learned reward's local model folder that does not exist",
        {"rewards": {"rm": {"backend": "sequence_classifier", "model": "./reward_model"}}}, "rewards.rm.model",
        "./reward_model"),
    Bad("a primary reward that is not a reward", {"primary_reward": "skywork"}, "primary_reward", "skywork"),
    Bad("a Table 1 learning rate outside the grid", {"report": {"table_lr": 0.1}}, "report.table_lr", "0.1"),
    Bad("published numbers for a student not in the config",
        {"report": {"published": {"source": "x", "student": "qwen", "streams": {"slm_rft": {"paper_row": "SLM-RFT"}}}}},
        "report.published.student", "qwen"),
    Bad("a replay folder that is not an archive", {"archive": {"replay": "frozen"}}, "archive.replay", "frozen"),
    Bad("a vLLM interpreter that does not exist",
        {"native_traces": {"backend": "vllm"}, "vllm": {"python": ".venv-nowhere/bin/python"}}, "vllm.python",
        ".venv-nowhere/bin/python"),
    Bad("a misspelt section (the schema)", {"evalution": {"k": 4}}, "evalution", "evalution"),
    Bad("a value of the wrong type (the schema)", {"training": {"lr": ["fast"]}}, "lr", "fast"),
]  # fmt: skip


def layered(overlay: dict) -> dict:
    """The CI-sized config with ``overlay`` on top, merged as Snakemake merges --configfile files."""
    config = {}
    for path in CONFIGS:
        update_config(config, yaml.safe_load(Path(path).read_text()))
    update_config(config, copy.deepcopy(overlay))
    return config


def write_files(workdir: Path, files: dict) -> None:
    for name, content in files.items():
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, list):
            content = "".join(json.dumps(r) + "\n" for r in content)
        path.write_text(content)


def pre_dag(config: dict) -> None:
    """What rules/common.smk runs before the DAG: secrets, the schema, the config's own checks."""
    study_config.refuse_secrets(config)
    validate(config, SCHEMA)
    study_config.check(config, environ=ENV)


def assert_names(text: str, row: Bad) -> None:
    assert row.key in text, text
    if row.secret:
        assert row.value not in text and row.value[:-4] not in text, "the secret was repeated back"
        assert row.value[-4:] in text  # its last 4 characters identify which value it was
    else:
        assert row.value in text, text


def test_the_ci_config_passes_every_check(tmp_path, monkeypatch):
    # every row's refusal is its own: the config it is layered on passes
    monkeypatch.chdir(tmp_path)
    pre_dag(layered({}))
    pre_dag(layered(api_oracle()))  # an API oracle with its key variable set passes too


@pytest.mark.parametrize("row", BAD_INPUTS, ids=[r.what for r in BAD_INPUTS])
def test_a_bad_input_is_refused_before_any_job_naming_its_key_and_value(row, tmp_path, monkeypatch):
    write_files(tmp_path, row.files)
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ConfigError, WorkflowError)) as err:
        pre_dag(layered(row.overlay))
    assert_names(str(err.value), row)


@pytest.mark.e2e
@pytest.mark.parametrize("row", [r for r in BAD_INPUTS if r.cli], ids=[r.what for r in BAD_INPUTS if r.cli])
def test_snakemake_stops_before_any_job_naming_the_key(row, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_VAR, "set")
    work = tmp_path / "work"
    write_files(work, row.files)
    out = snakemake(work, "-n", check=False, edit=yaml.safe_dump(row.overlay))
    assert out.returncode != 0
    assert_names(out.stdout + out.stderr, row)
    assert not (work / "results").exists()
    if row.secret:  # nor in any file Snakemake wrote (its log of this run)
        assert not [p for p in work.rglob("*") if p.is_file() and row.value.encode() in p.read_bytes()]


def test_every_problem_of_a_config_is_named_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [r for r in BAD_INPUTS if r.what.startswith(("a stray brace", "a seeds list", "a drift reference"))]
    overlay = {}
    for r in rows:
        update_config(overlay, copy.deepcopy(r.overlay))
    with pytest.raises(ConfigError, match="the config has 3 problems") as err:
        pre_dag(layered(overlay))
    for r in rows:
        assert_names(str(err.value), r)


def test_the_secret_check_leaves_names_paths_and_hashes_alone():
    ordinary = [
        "Qwen/Qwen2.5-Math-1.5B",
        "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2",
        "deepseek-ai/deepseek-math-7b-base",
        "AI-MO/NuminaMath-CoT",
        "OPENAI_API_KEY",
        "http://gpu-node:8000/v1",
        "/scratch/user/.cache/huggingface/hub/models--Qwen--Qwen2.5-Math-72B-Instruct",
        "numina_math_cot_train_subset_v2.parquet",
        "Please reason step by step, and put your final answer within \\boxed{}.",
        "NuminaMathCoTTrainSubsetVersion2024",  # camel case: words, not a random string
    ]
    assert [s for s in ordinary if secret_in(s)] == []
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert secret_in(commit, "students.tiny.revision") is None
    assert secret_in(commit, "oracles.gpt.model") == commit  # 40 hex elsewhere: a W&B-style key
    keys = [OPENAI_KEY, HF_TOKEN, RANDOM_KEY, "AKIAIOSFODNN7EXAMPLE", "0123456789abcdef0123456789abcdef"]
    assert all(secret_in(k) for k in keys)


def test_the_scheduler_names_are_transformers_own():
    from transformers.trainer_utils import SchedulerType

    assert set(SCHEDULERS) == {s.value for s in SchedulerType}


class Params(dict):
    __getattr__ = dict.__getitem__


def test_a_stop_token_the_built_in_tokenizer_lacks_stops_the_student_job_naming_the_key(tmp_path):
    # The built-in tokenizer's vocabulary is learned from its corpus when the student is built: the
    # one check that cannot be made before the DAG runs is made by the student's own (first) job.
    spec = {"model": "builtin", "revision": None, "prompt_template": TEMPLATE, "seed": 0, "builtin": TINY}
    job = SimpleNamespace(
        output=SimpleNamespace(student=str(tmp_path / "student" / "tiny" / "student.json")),
        log=[str(tmp_path / "student.log")],
        threads=1,
        wildcards=SimpleNamespace(student="tiny"),
        params=Params(spec={**spec, "stop_tokens": ["<|endoftext|>", "<|im_end|>"]}, replay=None),
    )
    with pytest.raises(SystemExit):
        run_stage("student", job)
    log = (tmp_path / "student.log").read_text()
    assert "students.tiny.stop_tokens: ['<|im_end|>']" in log and "checked once it is built" in log
    assert not Path(job.output.student).exists()  # the record later stages load is not written
