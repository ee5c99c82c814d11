"""The config's checks before the first job (``check``; what they are is in
``config_checks``) and the experiment grid it expands to. Each error names the config key at
fault."""

import itertools
import os

from scripts.infrastructure.config_checks import ConfigError, problems, refuse, refuse_secrets, repeats

__all__ = ["ConfigError", "check", "fmt_epochs", "fmt_lr", "refuse_secrets", "runs"]


def check(config: dict, environ=os.environ) -> None:
    """Refuse a config before its first job: secrets first (never repeated), then every problem
    the schema cannot express (``config_checks``), all at once, each naming its key."""
    refuse_secrets(config)
    refuse(problems(config, environ) + grid_repeats(config) + training_world(config))


def grid_repeats(config: dict) -> list[str]:
    t = config["training"]
    named = {"lr": fmt_lr, "epochs": fmt_epochs}
    return [
        p
        for axis in ("objectives", "lr", "batch_size", "epochs", "seeds")
        for p in repeats(f"training.{axis}", t[axis], named.get(axis, str))
    ]


def training_world(config: dict) -> list[str]:
    """A fine-tuning job trains in GPUs per node x nodes processes (scripts.training.launch): each
    effective batch must split into micro-batches over all of them; only training spans nodes."""
    res, t = config["resources"], config["training"]
    out = [
        f"resources.{stage}.nodes is {spec['nodes']}: only training (resources.training) runs on several nodes"
        for stage, spec in res.items()
        if stage != "training" and spec.get("nodes", 1) > 1
    ]
    gpus, nodes = res["training"]["gpu"], res["training"].get("nodes", 1)
    world = max(1, gpus) * nodes
    if nodes > 1 and gpus < 1:
        out.append(f"resources.training.nodes is {nodes} but resources.training.gpu is {gpus}: set GPUs per node")
    micro = t["hparams"]["micro_batch_size"]
    for bs in t["batch_size"]:
        per_step = min(micro, bs) * world
        if world > 1 and bs % per_step:
            out.append(
                f"training.batch_size: {bs} cannot be split over {world} training processes "
                f"(resources.training.gpu {gpus} x nodes {nodes}) in micro-batches of "
                f"{min(micro, bs)} (training.hparams.micro_batch_size): use a multiple of {per_step}"
            )
    return out


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
