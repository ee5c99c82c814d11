"""Checks of the validated config that a JSON schema cannot express, and the experiment
grid it expands to. Each error names the config key at fault."""

import itertools
import os
import re
from pathlib import Path


class ConfigError(ValueError):
    pass


def check(config: dict, environ=os.environ) -> None:
    streams = config["streams"]
    for name, s in streams.items():
        if s["kind"] == "oracle":
            for key in ("task", "oracle"):
                if s.get(key) is None:
                    raise ConfigError(f"streams.{name}.{key} is required for an oracle stream")
            if s["oracle"] not in config["oracles"]:
                raise ConfigError(
                    f"streams.{name}.oracle: no oracle named {s['oracle']!r} under 'oracles' "
                    f"(have {sorted(config['oracles'])})"
                )
            check_oracle(config["oracles"][s["oracle"]], s["oracle"], name, s["task"], environ)
    if config["primary_reward"] not in config["rewards"]:
        raise ConfigError(
            f"primary_reward: {config['primary_reward']!r} is not one of rewards {sorted(config['rewards'])}"
        )
    hp = config["training"]["hparams"]
    for bs in config["training"]["batch_size"]:
        if bs % min(hp["micro_batch_size"], bs):
            raise ConfigError(
                f"training.batch_size {bs} is not a multiple of "
                f"training.hparams.micro_batch_size {hp['micro_batch_size']}"
            )
    for name, st in config["students"].items():
        if "{problem}" not in st["prompt_template"]:
            raise ConfigError(f"students.{name}.prompt_template has no {{problem}} field")
        b = st["builtin"]
        if st["model"] == "builtin" and b["min_steps"] > b["max_steps"]:
            raise ConfigError(f"students.{name}.builtin.min_steps exceeds max_steps")
    sets = {
        "problems.pool": config["problems"]["pool"],
        **{f"problems.benchmarks.{k}": v for k, v in config["problems"]["benchmarks"].items()},
    }
    for key, spec in sets.items():
        if spec["source"] == "generator" and spec["min_steps"] > spec["max_steps"]:
            raise ConfigError(f"{key}.min_steps exceeds {key}.max_steps")
        if spec["source"] != "generator" and not spec["path"]:
            raise ConfigError(f"{key}.path is required for source {spec['source']!r}")
    for key in ("table_lr", "table_batch_size", "table_epochs"):
        grid_key = key.removeprefix("table_")
        value = config["report"][key]
        if value is not None and value not in config["training"][grid_key]:
            raise ConfigError(f"report.{key} {value} is not in training.{grid_key}")
    published = config["report"]["published"]
    if published is not None:
        if published["student"] not in config["students"]:
            raise ConfigError(
                f"report.published.student: {published['student']!r} is not one of students "
                f"{sorted(config['students'])}"
            )
        unknown = sorted(set(published["streams"]) - set(config["streams"]))
        if unknown:
            raise ConfigError(
                f"report.published.streams: {unknown} are not streams of this config {sorted(config['streams'])}"
            )


def check_oracle(spec: dict, name: str, stream: str, task: str, environ) -> None:
    """An API oracle a stream uses: its model, its prompt templates (the stream's task, and the
    retention judge) and its API key, before any job starts. The key's value is never read
    here beyond its presence."""
    if spec["backend"] != "openai":
        return
    key = f"oracles.{name}"
    if not spec.get("model"):
        raise ConfigError(f"{key}.model is required for an openai oracle (stream {stream} uses it)")
    for t in (task, "judge"):
        path = spec["prompts"][t]
        if not re.fullmatch(r"\w+\.v\d+\.md", Path(path).name):
            raise ConfigError(f"{key}.prompts.{t}: {path!r} is not named <name>.v<version>.md")
        if not Path(path).is_file():
            raise ConfigError(f"{key}.prompts.{t}: no prompt template at {path!r}")
    var = spec.get("api_key_env")
    if var and not environ.get(var):
        raise ConfigError(
            f"{key}.api_key_env: the environment variable {var} is not set (stream {stream} "
            f"uses oracle {name!r}); export {var} before the run"
        )


def fmt_lr(lr: float) -> str:
    return f"{lr:g}"


def fmt_epochs(epochs: float) -> str:
    return f"{epochs:g}"


def runs(config: dict) -> list[dict]:
    """Every fine-tuning run: student x stream x objective x lr x batch size x epochs x seed."""
    t = config["training"]
    return [
        dict(student=st, stream=s, objective=o, lr=fmt_lr(lr), batch_size=bs, epochs=fmt_epochs(ep), seed=seed)
        for st, s, o, lr, bs, ep, seed in itertools.product(
            config["students"], config["streams"], t["objectives"], t["lr"], t["batch_size"], t["epochs"], t["seeds"]
        )
    ]
