"""The run manifest: everything needed to cite, audit and reproduce a run, written with the
report (``results/report/manifest.json``).

It records the git commit (and whether the tree was dirty), the resolved config and its
hash, the packages of the environment that ran and the pins of every declared environment,
each student with its resolved revision (or the sha256 of a built-in student's weights),
each problem set with its source, revision and a fingerprint of the rows used, the seeds,
the oracle and reward endpoints, the sha256 of every artifact under ``results/``, and how to
rebuild the software (``rebuild``: which lock, for which platform, with which command).
"""

import os
from pathlib import Path

from scripts.infrastructure.locks import differences, read_lock, runs_here, stacks, this_platform
from scripts.infrastructure.provenance import config_hash, declared_environments, git_state, installed_packages
from scripts.infrastructure.records import read_json, sha256
from scripts.infrastructure.stage_log import CPU_KERNELS


def resolved_student(name: str, spec: dict, student_json: str) -> dict:
    record = read_json(student_json)
    out = {"name": name, "model": spec["model"], "revision": spec["revision"], "path": record["path"]}
    weights = sorted(Path(record["path"]).glob("*.safetensors")) if Path(record["path"]).is_dir() else []
    if weights:
        out["weights_sha256"] = {w.name: sha256(w) for w in weights}
    else:  # a hub model: the commit of the snapshot in the local cache, if it was loaded here
        try:
            from huggingface_hub import snapshot_download

            path = snapshot_download(spec["model"], revision=spec["revision"], local_files_only=True)
            out["resolved_revision"] = Path(path).name
        except Exception as e:  # not in this machine's cache: say so rather than guess
            out["resolved_revision"] = None
            out["unresolved_because"] = f"{type(e).__name__}: not in the local hub cache"
    return out


def problem_sets(config: dict, files: dict[str, str]) -> dict:
    specs = {"pool": config["problems"]["pool"], **config["problems"]["benchmarks"]}
    return {
        name: {
            "source": specs[name]["source"],
            "path": specs[name]["path"],
            "revision": specs[name]["revision"],
            "rows_sha256": sha256(f),
            "rows": sum(1 for line in open(f) if line.strip()),
        }
        for name, f in files.items()
    }


def seeds(config, prefix="") -> dict:
    out = {}
    if isinstance(config, dict):
        for k, v in config.items():
            key = f"{prefix}{k}"
            if k in ("seed", "seeds"):
                out[key] = v
            else:
                out |= seeds(v, key + ".")
    return out


def artifacts(results: str, skip: tuple[str, ...]) -> dict[str, str]:
    root = Path(results)
    return {
        f.relative_to(root).as_posix(): sha256(f)
        for f in sorted(root.rglob("*"))
        if f.is_file() and not any(f.relative_to(root).as_posix().startswith(s) for s in skip)
    }


# Environment variables that change what a run writes (transformers saves local_files_only into a
# tokenizer's config when the hub is offline; the CPU kernels round differently), so a replay sets
# them as the run had them.
RUN_ENVIRONMENT = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", *CPU_KERNELS)


def rebuild(repo: str, packages: dict[str, str]) -> dict:
    """How to rebuild the software that ran: the main stack's lock (the venv every stage runs
    in here), its platform, whether this run's environment was exactly that set, and the
    commands; the conda envs' pip parts have locks of their own."""
    every = stacks(repo)
    main = every["main"]
    return {
        "lock": main.lock,
        "lock_sha256": sha256(Path(repo) / main.lock),
        "platform": main.platform.describe(),
        "this_platform": this_platform(),
        "lock_runs_here": runs_here(main.platform) is None,
        "environment_differs_from_lock": differences(read_lock(Path(repo) / main.lock), packages),
        "environment_variables": {var: os.environ.get(var) for var in RUN_ENVIRONMENT},
        "offline": (
            "snakemake --cores 2 freeze --config 'archive={wheelhouse: true}' (with this run's --configfile "
            "flags), then, anywhere with only the archive and that Python: python3 results/frozen/replay.py DEST"
        ),
        "venv": f"python3.11 -m venv .venv && .venv/bin/pip install --require-hashes -r {main.lock}",
        "conda": (
            "snakemake --archive FILE.tar.gz (code and conda envs; needs conda), or snakemake "
            "--conda-create-envs-only; each env's pip part is locked in locks/env-<env>.txt"
        ),
        "env_locks": {s.source: s.lock for s in every.values() if s.source.startswith("envs/")},
    }


def build(
    config: dict, repo: str, students: dict[str, str], problem_files: dict[str, str], results: str = "results"
) -> dict:
    packages = installed_packages()
    return {
        "git": git_state(repo),
        "config": config,
        "config_sha256": config_hash(config),
        "environment": {"packages": packages, "declared": declared_environments(f"{repo}/envs")},
        "rebuild": rebuild(repo, packages),
        "students": [resolved_student(n, config["students"][n], f) for n, f in students.items()],
        "problem_sets": problem_sets(config, problem_files),
        "seeds": seeds(config),
        "oracles": config["oracles"],
        "rewards": config["rewards"],
        "artifacts": artifacts(results, skip=("logs/", "report/manifest.json", "frozen/")),
    }
