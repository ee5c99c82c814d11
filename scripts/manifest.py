"""The run manifest: everything needed to cite, audit and reproduce a run, written with the
report (``results/report/manifest.json``).

It records the git commit (and whether the tree was dirty), the resolved config and its
hash, the packages of the environment that ran and the pins of every declared environment,
each student with its resolved revision (or the sha256 of a built-in student's weights),
each problem set with its source, revision and a fingerprint of the rows used, the seeds,
the oracle and reward endpoints, and the sha256 of every artifact under ``results/``.
"""

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from scripts.archive import sha256
from scripts.records import read_json, write_json
from scripts.stage import logged


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def git_state(repo: str) -> dict:
    def git(*args):
        out = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def installed_packages() -> dict[str, str]:
    return dict(sorted({d.metadata["Name"].lower(): d.version for d in metadata.distributions()}.items()))


def declared_environments(env_dir: str) -> dict[str, list[str]]:
    out = {}
    for f in sorted(Path(env_dir).glob("*.yaml")):
        spec = yaml.safe_load(f.read_text())
        deps = []
        for d in spec.get("dependencies", []):
            deps += d["pip"] if isinstance(d, dict) else [d]
        out[f.name] = deps
    return out


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
    return {name: {"source": specs[name]["source"], "path": specs[name]["path"],
                   "revision": specs[name]["revision"], "rows_sha256": sha256(f),
                   "rows": sum(1 for line in open(f) if line.strip())}
            for name, f in files.items()}


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
    return {f.relative_to(root).as_posix(): sha256(f) for f in sorted(root.rglob("*"))
            if f.is_file() and not any(f.relative_to(root).as_posix().startswith(s) for s in skip)}


def build(config: dict, repo: str, students: dict[str, str], problem_files: dict[str, str],
          results: str = "results") -> dict:
    return {
        "git": git_state(repo),
        "config": config,
        "config_sha256": config_hash(config),
        "environment": {"packages": installed_packages(), "declared": declared_environments(f"{repo}/envs")},
        "students": [resolved_student(n, config["students"][n], f) for n, f in students.items()],
        "problem_sets": problem_sets(config, problem_files),
        "seeds": seeds(config),
        "oracles": config["oracles"],
        "rewards": config["rewards"],
        "artifacts": artifacts(results, skip=("logs/", "report/manifest.json", "frozen/")),
    }


def main(snakemake) -> None:
    with logged(snakemake.log[0], snakemake.threads):
        p = snakemake.params
        manifest = build(p.config, p.repo, dict(zip(p.students, snakemake.input.students)),
                         dict(zip(p.problem_sets, snakemake.input.problems)))
        write_json(snakemake.output[0], manifest)
        print(f"manifest: {len(manifest['artifacts'])} artifacts, config {manifest['config_sha256'][:12]}")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 -- injected by Snakemake's script directive
