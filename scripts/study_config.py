"""Checks of the validated config that a JSON schema cannot express, and the experiment
grid it expands to. Each error names the config key at fault."""


import itertools


class ConfigError(ValueError):
    pass


def check(config: dict) -> None:
    streams = config["streams"]
    for name, s in streams.items():
        if s["kind"] == "oracle":
            for key in ("task", "oracle"):
                if s.get(key) is None:
                    raise ConfigError(f"streams.{name}.{key} is required for an oracle stream")
            if s["oracle"] not in config["oracles"]:
                raise ConfigError(f"streams.{name}.oracle: no oracle named {s['oracle']!r} under 'oracles' "
                                  f"(have {sorted(config['oracles'])})")
    if config["primary_reward"] not in config["rewards"]:
        raise ConfigError(f"primary_reward: {config['primary_reward']!r} is not one of rewards "
                          f"{sorted(config['rewards'])}")
    hp = config["training"]["hparams"]
    for bs in config["training"]["batch_size"]:
        if bs % min(hp["micro_batch_size"], bs):
            raise ConfigError(f"training.batch_size {bs} is not a multiple of "
                              f"training.hparams.micro_batch_size {hp['micro_batch_size']}")
    for name, st in config["students"].items():
        if "{problem}" not in st["prompt_template"]:
            raise ConfigError(f"students.{name}.prompt_template has no {{problem}} field")
        b = st["builtin"]
        if st["model"] == "builtin" and b["min_steps"] > b["max_steps"]:
            raise ConfigError(f"students.{name}.builtin.min_steps exceeds max_steps")
    sets = {"problems.pool": config["problems"]["pool"],
            **{f"problems.benchmarks.{k}": v for k, v in config["problems"]["benchmarks"].items()}}
    for key, spec in sets.items():
        if spec["source"] == "generator" and spec["min_steps"] > spec["max_steps"]:
            raise ConfigError(f"{key}.min_steps exceeds {key}.max_steps")
        if spec["source"] != "generator" and not spec["path"]:
            raise ConfigError(f"{key}.path is required for source {spec['source']!r}")
    for key in ("table_lr", "table_batch_size"):
        grid_key = {"table_lr": "lr", "table_batch_size": "batch_size"}[key]
        value = config["report"][key]
        if value is not None and value not in config["training"][grid_key]:
            raise ConfigError(f"report.{key} {value} is not in training.{grid_key}")


def fmt_lr(lr: float) -> str:
    return f"{lr:g}"


def runs(config: dict) -> list[dict]:
    """Every fine-tuning run: student x stream x objective x lr x batch size x seed."""
    t = config["training"]
    return [dict(student=st, stream=s, objective=o, lr=fmt_lr(lr), batch_size=bs, seed=seed)
            for st, s, o, lr, bs, seed in itertools.product(
                config["students"], config["streams"], t["objectives"], t["lr"], t["batch_size"], t["seeds"])]
