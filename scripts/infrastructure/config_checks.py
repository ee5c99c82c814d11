"""Everything about a config that can be known before the first job, checked before the DAG
runs (``rules/common.smk``): what a JSON schema cannot say (references between keys, grid axes
without repeats, templates that format, the built-in student's shapes), local files that must
exist and parse (problem files, model folders, a replayed archive), and secrets that must never
be in a config at all.

Every message names the config key path and its value and says what would be accepted; a
value that looks like a secret is never repeated (only its last 4 characters). ``problems``
lists every problem of a config and ``refuse`` raises them as one ``ConfigError``, so one run
names them all (``study_config.check`` does both, after ``refuse_secrets``).

What only a job can know is checked there and named by key all the same: whether a stop
token is one token of the built-in student's tokenizer (its vocabulary is learned when the
student is built) or of a hub model's (not downloaded before the DAG runs) is checked by the
student stage; a local model folder's is checked here.
"""

import contextlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Collection, Iterator
from pathlib import Path

from scripts.data.problems import load_problem_set, read_file
from scripts.infrastructure.stage_log import StageError


class ConfigError(StageError, ValueError):
    """A config the workflow refuses before (or, where only a job can know, at) its first job."""


# A problem no prompt template holds by chance: it must appear in every rendered prompt.
SAMPLE_PROBLEM = "A shop has 12 apples and sells 5 of them. How many apples are left?"
SAMPLE_TRACE = "12 - 5 = 7\nThe answer is \\boxed{7}."

# Names become path parts and wildcard values.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
RESERVED_STREAMS = {"base", "base_greedy"}  # the evaluation folders of the untrained student
ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Hub repo ids as huggingface_hub accepts them: "name" or "owner/name".
HUB_ID = re.compile(r"(?!.*(--|\.\.))[A-Za-z0-9][\w.-]*(/[\w.-]+)?(?<!\.git)")
# The module names of the built-in student's Qwen2 layers that LoRA can target.
QWEN2_MODULES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head", "embed_tokens"}
# transformers 5.24's SchedulerType values (tests compare this with transformers' own enum:
# importing it here would cost the DAG seconds of torch import).
SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
    "greedy",
)


def problems(config: dict, environ=os.environ) -> list[str]:
    """Every problem of a schema-validated ``config`` that is knowable before the first job."""
    return list(dict.fromkeys(p for find in CHECKS for p in find(config, environ)))  # each once


def refuse(found: list[str]) -> None:
    """One ConfigError listing every problem (nothing when there is none)."""
    if found:
        head = "the config has a problem" if len(found) == 1 else f"the config has {len(found)} problems"
        raise ConfigError(head + ":\n" + "\n".join(f"  - {p}" for p in found))


def shown(value, limit: int = 100) -> str:
    """A value as a message quotes it (long strings cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


# --- secrets -----------------------------------------------------------------------------------

# Key formats of the usual providers (OpenAI and Anthropic sk-, Hugging Face, GitHub, GitLab,
# Slack, AWS, Google, JWTs, PEM private keys, NVIDIA, Groq, Perplexity, Replicate, Stripe).
_KEY_FORMATS = re.compile(
    r"(?<![A-Za-z0-9_])(?:"
    r"sk-[A-Za-z0-9_-]{16,}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|AIza[A-Za-z0-9_-]{35}"
    r"|ya29\.[A-Za-z0-9_-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"
    r"|(?:nvapi|pplx|gsk|r8)[-_][A-Za-z0-9_-]{20,}"
    r")"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
_RUN = re.compile(r"[A-Za-z0-9]{24,}")  # a long unbroken run of letters and digits
_HEX = re.compile(r"[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*")
_COMMIT = re.compile(r"[0-9a-f]{40}")


def _char_class(c: str) -> int:
    return 0 if c.isdigit() else 1 if c.islower() else 2


def looks_random(run: str) -> bool:
    """A long run of letters and digits that is a random token rather than words: hex of 32
    characters or more (an Azure key, a Together or W&B key), or one that switches between upper
    case, lower case and digits at almost every other character (a random base-62 key does at
    6 of 10 characters; camel-case names such as Qwen25MathInstruct7B far less)."""
    if _HEX.fullmatch(run):
        return len(run) >= 32
    switches = sum(_char_class(a) != _char_class(b) for a, b in zip(run, run[1:]))
    return switches >= 0.45 * (len(run) - 1)


def secret_in(text: str, key: str = "") -> str | None:
    """The part of ``text`` that looks like an API key or token, or None. A commit hash is
    accepted where it belongs: as a whole ``revision``."""
    m = _KEY_FORMATS.search(text)
    if m:
        return m.group(0)
    if key.rsplit(".", 1)[-1] == "revision" and _COMMIT.fullmatch(text):
        return None
    for run in _RUN.findall(text):
        if looks_random(run):
            return run
    return None


def masked(secret: str) -> str:
    """All but the last 4 characters hidden."""
    return f"<{len(secret)} characters ending {secret[-4:]!r}>"


def secrets(node, path: str = "") -> Iterator[tuple[str, str]]:
    """(key path, masked value) of every value, or key, of a config that looks like a secret."""
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{path}.{k}" if path else str(k)
            found = secret_in(str(k))
            if found:
                yield f"{path or '(top level)'} (a key)", masked(found)
                continue
            yield from secrets(v, key)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from secrets(v, f"{path}[{i}]")
    elif isinstance(node, str):
        found = secret_in(node, path)
        if found:
            yield path, masked(found)


def refuse_secrets(config: dict) -> None:
    """Refuse a config that holds anything that looks like an API key or token, without
    printing it. Runs before the schema validation, whose messages would quote the value."""
    found = list(secrets(config))
    if not found:
        return
    lines = []
    for key, value in found:
        if key.endswith(".api_key_env"):
            what = "an API key, where the NAME of the environment variable that holds the key belongs"
        else:
            what = "an API key or token"
        lines.append(f"{key}: the value {value} looks like {what}")
    raise ConfigError(
        "the config holds what looks like a secret; it is not repeated here, and the run stops "
        "before it reaches a log, the manifest or the report:\n"
        + "\n".join(f"  - {line}" for line in lines)
        + "\n  Put the key in an environment variable (export OPENAI_API_KEY=...) and name the variable "
        "in oracles.<name>.api_key_env (e.g. api_key_env: OPENAI_API_KEY)."
    )


# --- the checks, each a list of messages -------------------------------------------------------


def names(config: dict, environ) -> list[str]:
    out = []
    for section in ("students", "streams", "oracles", "rewards"):
        out += [
            f"{section}: the name {n!r} is not usable in paths and wildcards; use letters, digits, '_', '-', '.'"
            for n in config[section]
            if not NAME.fullmatch(str(n))
        ]
    out += [
        f"problems.benchmarks: the name {n!r} is not usable; use letters, digits, '_', '-', '.' (and not 'pool')"
        for n in config["problems"]["benchmarks"]
        if not NAME.fullmatch(str(n)) or n == "pool"
    ]
    out += [
        f"streams: the name {n!r} is taken by the untrained student's evaluation ({sorted(RESERVED_STREAMS)}); "
        "name the stream otherwise"
        for n in config["streams"]
        if n in RESERVED_STREAMS
    ]
    return out


def streams(config: dict, environ) -> list[str]:
    out = []
    for name, s in config["streams"].items():
        key = f"streams.{name}"
        if s["kind"] != "oracle":
            out += [
                f"{key}.{k}: {s[k]!r} is set but kind is {s['kind']!r}; only oracle streams use a task and an "
                "oracle: remove it, or set kind: oracle"
                for k in ("task", "oracle")
                if s.get(k) is not None
            ]
            continue
        missing = [k for k in ("task", "oracle") if s.get(k) is None]
        out += [f"{key}.{k} is required for an oracle stream" for k in missing]
        if missing:
            continue
        if s["oracle"] not in config["oracles"]:
            out.append(
                f"{key}.oracle: no oracle named {s['oracle']!r} under 'oracles' (have {sorted(config['oracles'])})"
            )
            continue
        out += oracle(config["oracles"][s["oracle"]], s["oracle"], f"stream {name}", s["task"], environ)
    judge = config["retention"]["judge"]
    if judge is not None and judge not in config["oracles"]:
        out.append(f"retention.judge: no oracle named {judge!r} under 'oracles' (have {sorted(config['oracles'])})")
    elif judge is not None and any(s["kind"] == "oracle" for s in config["streams"].values()):
        out += oracle(config["oracles"][judge], judge, "retention.judge", "judge", environ)
    ref = config["adaptation_cost"]["drift"]["reference_stream"]
    if ref not in config["streams"]:
        out.append(
            f"adaptation_cost.drift.reference_stream: {ref!r} is not a stream of this config; "
            f"one of {sorted(config['streams'])}"
        )
    return out


def oracle(spec: dict, name: str, user: str, task: str, environ) -> list[str]:
    """An API oracle a stream uses: its model, endpoint, prompt templates (the stream's task and
    the retention judge) and its key variable. The key's value is never read beyond its
    presence."""
    if spec["backend"] != "openai":
        return []
    key, out = f"oracles.{name}", []
    if not spec.get("model"):
        out.append(f"{key}.model is required for an openai oracle ({user} uses it)")
    url = spec.get("base_url")
    if url is not None and not re.match(r"https?://[^/\s]+", url):
        out.append(f"{key}.base_url: {shown(url)} is not an http(s) URL; e.g. http://gpu-node:8000/v1, or null")
    for t in dict.fromkeys((task, "judge")):
        path = spec["prompts"][t]
        if not re.fullmatch(r"\w+\.v\d+\.md", Path(path).name):
            out.append(f"{key}.prompts.{t}: {path!r} is not named <name>.v<version>.md")
        elif not Path(path).is_file():
            out.append(f"{key}.prompts.{t}: no prompt template at {path!r} (from {os.getcwd()})")
    var = spec.get("api_key_env")
    if var is None:
        if url is None:
            out.append(
                f"{key}.api_key_env is null but base_url is null (the OpenAI API, which needs a key): name "
                "the variable that holds the key, e.g. OPENAI_API_KEY"
            )
    elif not ENV_VAR.fullmatch(var):
        out.append(
            f"{key}.api_key_env: a value of {len(var)} characters that is not the name of an environment "
            "variable (not repeated here in case it is a key); name the variable, e.g. OPENAI_API_KEY"
        )
    elif not environ.get(var):
        out.append(
            f"{key}.api_key_env: the environment variable {var} is not set ({user} uses oracle "
            f"{name!r}); export {var} before the run"
        )
    return out


def rewards(config: dict, environ) -> list[str]:
    out = []
    if config["primary_reward"] not in config["rewards"]:
        out.append(f"primary_reward: {config['primary_reward']!r} is not one of rewards {sorted(config['rewards'])}")
    for name, r in config["rewards"].items():
        if r["backend"] == "builtin":
            continue
        key = f"rewards.{name}"
        if r.get("model"):  # (a reward model the pipeline trains itself has none)
            out += model_source(f"{key}.model", r["model"])
        fields = {"user_template": ("problem",), "plain_template": ("problem", "trace")}
        if r.get("prompt_format", "chat_template") == "chat_template":
            fields.pop("plain_template")
        for k, needed in fields.items():
            if k in r:
                out += template(f"{key}.{k}", r[k], needed)
    return out


def template(key: str, text: str, fields: tuple[str, ...] = ("problem",)) -> list[str]:
    """A str.format template that formats with a sample item and holds each field's text."""
    sample = {"problem": SAMPLE_PROBLEM, "trace": SAMPLE_TRACE}
    wanted = ", ".join("{" + f + "}" for f in fields)
    hint = (
        f"the template may use only the field(s) {wanted}, and a literal brace is written doubled "
        "({{ and }}: e.g. \\boxed{{}})"
    )
    try:
        rendered = text.format(**{f: sample[f] for f in fields})
    except (ValueError, IndexError, KeyError, AttributeError, TypeError) as e:
        return [f"{key}: {shown(text)} does not format ({type(e).__name__}: {e}); {hint}"]
    lost = [f for f in fields if sample[f] not in rendered]
    if lost:
        return [
            f"{key}: {shown(text)} does not put the {' or '.join(lost)} into the prompt (a field written "
            f"{{{{{lost[0]}}}}} is a literal brace pair); write it as {{{lost[0]}}}"
        ]
    return []


def model_source(key: str, model: str) -> list[str]:
    """A model is a hub id (checked only when loaded) or a local folder that must exist and hold a
    model (its config.json)."""
    p = Path(model).expanduser()
    local = model.startswith(("/", "./", "../", "~")) or p.exists() or not HUB_ID.fullmatch(model)
    if not local:
        return []
    if not p.is_dir():
        return [
            f"{key}: {model!r} is neither a local model folder (none at {p.resolve()}) nor a hub id "
            "(owner/name); give an existing folder or a hub id"
        ]
    if not (p / "config.json").is_file():
        return [f"{key}: the folder {model!r} holds no config.json, so it is not a model folder (save_pretrained)"]
    return []


def students(config: dict, environ) -> list[str]:
    out = []
    for name, st in config["students"].items():
        key = f"students.{name}"
        out += template(f"{key}.prompt_template", st["prompt_template"])
        out += [
            f"{key}.stop_tokens: an empty string is no token; list tokens such as '<|im_end|>'"
            for t in st["stop_tokens"]
            if t == ""
        ]
        if st["model"] != "builtin":
            out += model_source(f"{key}.model", st["model"])
            vocab = local_vocabulary(st["model"])
            if vocab is not None:
                out += stop_token_problems(name, st["stop_tokens"], vocab, f"the tokenizer of {st['model']}")
            continue
        b = st["builtin"]
        if b["min_steps"] > b["max_steps"]:
            out.append(f"{key}.builtin.min_steps ({b['min_steps']}) exceeds {key}.builtin.max_steps ({b['max_steps']})")
        out += architecture(f"{key}.builtin.architecture", b["architecture"])
        pre = f"{key}.builtin.pretraining"
        out += batches(
            f"{pre}.batch_size", [b["pretraining"]["batch_size"]], f"{pre}.micro_batch_size", b["pretraining"]
        )
        out += scheduler(f"{key}.builtin.pretraining.lr_scheduler", b["pretraining"]["lr_scheduler"])
    return out


def architecture(key: str, arch: dict) -> list[str]:
    small = [f"{key}.{k}: {v} (at least 1)" for k, v in arch.items() if v < 1]
    if small:
        return small
    out = []
    hidden, heads, kv = arch["hidden_size"], arch["heads"], arch["kv_heads"]
    if hidden % heads:
        fits = [h for h in range(1, hidden + 1) if hidden % h == 0 and (hidden // h) % 2 == 0]
        out.append(
            f"{key}.heads: {heads} heads do not divide hidden_size {hidden}; with hidden_size {hidden}, "
            f"heads may be {fits[:8]}"
        )
    elif (hidden // heads) % 2:
        out.append(
            f"{key}: hidden_size {hidden} / heads {heads} = {hidden // heads} dimensions per head, an odd number "
            "(rotary position embeddings need an even one)"
        )
    if heads % kv:
        out.append(f"{key}.kv_heads: {kv} key/value heads do not divide heads {heads}; use a divisor of {heads}")
    return out


def batches(key: str, sizes: list[int], micro_key: str, hp: dict) -> list[str]:
    """Each effective batch a multiple of the micro-batch (a smaller batch is its own micro-batch)."""
    micro = hp["micro_batch_size"]
    return [
        f"{key}: {bs} is not a multiple of {micro_key} {micro}; "
        f"use a multiple of {micro}, or a micro_batch_size that divides {bs}"
        for bs in sizes
        if bs % min(micro, bs)
    ]


def scheduler(key: str, name: str) -> list[str]:
    if name in SCHEDULERS:
        return []
    return [f"{key}: {name!r} is not a transformers scheduler; one of {list(SCHEDULERS)}"]


def local_vocabulary(model: str) -> set[str] | None:
    """The tokens of a local model folder's fast tokenizer (tokenizer.json), read as JSON (no
    transformers); None where that cannot be known before a job (a hub id, a slow tokenizer)."""
    path = Path(model).expanduser() / "tokenizer.json"
    if not path.is_file():
        return None
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    vocab = tok.get("model", {}).get("vocab") or {}
    tokens = set(vocab) if isinstance(vocab, dict) else {v[0] for v in vocab}  # BPE / WordPiece, Unigram
    return tokens | {t["content"] for t in tok.get("added_tokens", [])}


def stop_token_problems(student: str, tokens: list[str], vocabulary: Collection[str], where: str) -> list[str]:
    return [
        f"students.{student}.stop_tokens: {t!r} is not one token of {where}; each stop token must be a "
        "single token of the student's tokenizer (e.g. '<|im_end|>' for Qwen2.5's chat format)"
        for t in tokens
        if t and t not in vocabulary
    ]


def repeats(key: str, values: list, as_named) -> list[str]:
    """A grid axis lists each point once (``as_named``: the value as its run folders name it)."""
    counts = Counter(as_named(v) for v in values)
    twice = [v for v, n in counts.items() if n > 1]
    if not twice:
        return []
    return [
        f"{key}: {values} repeats {', '.join(twice)}; each value is one point of the grid (a repeat would "
        "train and count the same runs twice), so list each once"
    ]


def training(config: dict, environ) -> list[str]:
    t = config["training"]
    out = batches("training.batch_size", t["batch_size"], "training.hparams.micro_batch_size", t["hparams"])
    out += scheduler("training.hparams.lr_scheduler", t["hparams"]["lr_scheduler"])
    if t["method"] == "lora":
        mods = t["lora"]["target_modules"]
        if not mods:
            out.append("training.lora.target_modules is empty; name the modules that get adapters (e.g. q_proj)")
        if any(st["model"] == "builtin" for st in config["students"].values()):
            unknown = [m for m in mods if m not in QWEN2_MODULES]
            if unknown:
                out.append(
                    f"training.lora.target_modules: {unknown} are not modules of the built-in student "
                    f"(a Qwen2 model: {sorted(QWEN2_MODULES)})"
                )
    return out


def report(config: dict, environ) -> list[str]:
    out = []
    for key in ("table_lr", "table_batch_size", "table_epochs"):
        grid_key = key.removeprefix("table_")
        value = config["report"][key]
        if value is not None and value not in config["training"][grid_key]:
            out.append(
                f"report.{key}: {value} is not in training.{grid_key} {config['training'][grid_key]}; "
                "one of those, or null"
            )
    published = config["report"]["published"]
    if published is not None:
        if published["student"] not in config["students"]:
            out.append(
                f"report.published.student: {published['student']!r} is not one of students "
                f"{sorted(config['students'])}"
            )
        unknown = sorted(set(published["streams"]) - set(config["streams"]))
        if unknown:
            out.append(
                f"report.published.streams: {unknown} are not streams of this config {sorted(config['streams'])}"
            )
    return out


def archive(config: dict, environ) -> list[str]:
    replay = config["archive"]["replay"]
    if replay and not (Path(replay) / "checksums.sha256").is_file():
        return [
            f"archive.replay: {replay!r} is not a frozen archive (no checksums.sha256 there); give the folder "
            "`snakemake freeze` wrote (results/frozen), or null"
        ]
    return []


def vllm(config: dict, environ) -> list[str]:
    python = config["vllm"]["python"]
    users = [s for s in ("native_traces", "evaluation", "adaptation_cost") if config[s]["backend"] == "vllm"]
    if users and python and not os.access(Path(python).expanduser(), os.X_OK):
        return [
            f"vllm.python: {python!r} is not an executable interpreter (stages {users} run vLLM with it); "
            "give the python of a venv that has vLLM, or null for the rule's own env"
        ]
    return []


# --- problem sets ------------------------------------------------------------------------------


def problem_sets(config: dict, environ) -> list[str]:
    sets = {
        "problems.pool": config["problems"]["pool"],
        **{f"problems.benchmarks.{k}": v for k, v in config["problems"]["benchmarks"].items()},
    }
    out = []
    for key, spec in sets.items():
        if spec["source"] == "generator":
            if spec["min_steps"] > spec["max_steps"]:
                out.append(f"{key}.min_steps ({spec['min_steps']}) exceeds {key}.max_steps ({spec['max_steps']})")
            if spec["n"] < 1:
                out.append(
                    f"{key}.n: {spec['n']} problems to generate; a generated set needs n >= 1 "
                    "(n: 0, all rows, means something only for a file or a dataset)"
                )
            continue
        if not spec["path"]:
            out.append(f"{key}.path is required for source {spec['source']!r}")
        elif spec["source"] == "file":
            out += problem_file(key, spec, config)
        elif spec["path"].startswith(("/", "./", "../", "~")) and not Path(spec["path"]).expanduser().exists():
            out.append(f"{key}.path: no local dataset folder at {spec['path']!r}; give an existing folder or a hub id")
    return out


def problem_file(key: str, spec: dict, config: dict) -> list[str]:
    """A local problem file, read the way its stage reads it: it parses, holds the mapped columns
    and usable rows, repeats no id and no problem, and has at least ``n`` usable rows."""
    path = spec["path"]
    if not Path(path).is_file():
        return [f"{key}.path: no problem file at {path!r} (from {os.getcwd()}); give a JSONL or Parquet file"]
    if Path(path).stat().st_size == 0:
        return [f"{key}.path: {path!r} is empty; a problem file holds one row per problem"]
    try:
        rows = read_file(path)
    except StageError as e:
        return [f"{key}.path: {path!r} does not parse as JSONL (one JSON object a line) or Parquet: {e}"]
    if not rows:
        return [f"{key}.path: {path!r} holds no rows"]
    columns = sorted({c for r in rows for c in r})
    cols = spec["columns"]
    roles = [r for r in ("problem", "solution", "answer", "id") if cols.get(r)]  # metadata: where present
    out = [
        f"{key}.columns.{role}: {cols[role]!r} is not a column of {path!r}; its columns are {columns}"
        for role in roles
        if cols[role] not in columns
    ]
    if out:
        return out
    for what, col in (("id", cols.get("id")), ("problem", cols["problem"])):
        if not col:
            continue
        seen = Counter(str(r[col]).strip() for r in rows if r.get(col) is not None)
        repeated = [v for v, n in seen.items() if n > 1]
        if repeated:
            out.append(
                f"{key}.path: {path!r} repeats {len(repeated)} {what}(s) (e.g. {shown(repeated[0], 60)} "
                f"{seen[repeated[0]]} times); each problem must be one row, or it counts twice: remove the repeats"
            )
    if out:
        return out
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the loader's "kept N rows" line
            usable = load_problem_set(key.rsplit(".", 1)[-1], {**spec, "n": 0})
    except StageError as e:
        return [f"{key}: {path!r}: {e}"]
    if spec["n"] > len(usable):
        out.append(
            f"{key}.n: {spec['n']}, but {path!r} has {len(usable)} usable rows (of {len(rows)}; a row needs a "
            f"problem and an answer); set n to at most {len(usable)}, or 0 for all"
        )
    if key == "problems.pool" and not any(r.get("reference_solution") for r in usable):
        refs = [n for n, s in config["streams"].items() if s["kind"] == "reference"]
        if refs:
            out.append(
                f"streams.{refs[0]}: a reference stream needs the pool's solutions, but no row of {path!r} has "
                f"one (problems.pool.columns.solution: {cols['solution']!r}); map a solution column or drop "
                "the stream"
            )
    return out


def oracle_sending(config: dict, environ) -> list[str]:
    """How an oracle's requests are sent and counted (batch mode, the estimate's chat template)."""
    out = []
    for name, spec in config["oracles"].items():
        if spec["backend"] == "builtin" and spec["batch"]["enabled"]:
            out.append(f"oracles.{name}.batch.enabled: the built-in oracle sends no requests to batch")
        template = spec["estimate"]["chat_template"]
        if template and not Path(template).is_file():
            out.append(f"oracles.{name}.estimate.chat_template: no file at {shown(template)}")
    return out


CHECKS = (names, streams, rewards, students, training, problem_sets, report, archive, vllm, oracle_sending)
