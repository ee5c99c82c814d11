"""Replay a frozen archive from nothing, offline: ``python3 replay.py DEST``.

This file is copied into every archive made with ``archive.wheelhouse: true`` (as
``replay.py``, next to ``checksums.sha256``) and needs nothing but a CPython of the archive's
platform (``frozen.json`` says which): no checkout, no venv, no network, no conda.

1. Every file of the archive is checked against ``checksums.sha256``, and every wheel that
   ``offline/requirements.txt`` asks for against it and against the lock (``offline/lock.txt``):
   a tampered, truncated or missing wheel (or artifact) stops here, before anything is installed.
2. ``DEST/venv``: a fresh venv, filled by ``pip install --no-index --require-hashes`` from the
   archive's wheels only (pip run from its own archived wheel, with no pip configuration).
3. ``DEST/source``: the project's source as it ran, unpacked.
4. The study reruns there with the run's own config plus ``archive: {replay: <this archive>}``:
   the frozen artifacts are restored, everything downstream is recomputed.
5. Every artifact the run's manifest lists is compared with its archived sha256;
   ``DEST/replay-report.json`` says how many were restored, recomputed and equal, and how long
   each step took. The exit status is 0 only if every one is equal.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

OFFLINE = "offline"
CHECKSUMS = "checksums.sha256"
SKIP = ("logs/", "frozen/", "report/manifest.json")  # what the run's manifest does not list either


class ReplayError(Exception):
    """The archive cannot be replayed: the message says which file or step, and why."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksums(archive: Path) -> dict[str, str]:
    path = archive / CHECKSUMS
    if not path.is_file():
        raise ReplayError(f"{archive} is not a frozen archive: it has no {CHECKSUMS}")
    pairs = (line.split("  ", 1) for line in path.read_text().splitlines() if line.strip())
    return {rel: digest for digest, rel in pairs}


def wanted_wheels(archive: Path) -> dict[str, str]:
    """sha256 -> requirement line of each wheel ``offline/requirements.txt`` installs."""
    path = archive / OFFLINE / "requirements.txt"
    if not path.is_file():
        raise ReplayError(f"{path} is missing: this archive was frozen without archive.wheelhouse")
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(\S+)==(\S+) --hash=sha256:([0-9a-f]{64})$", line.strip())
        if m:
            out[m.group(3)] = f"{m.group(1)}=={m.group(2)}"
    return out


def locked_hashes(archive: Path) -> set[str]:
    return set(re.findall(r"--hash=sha256:([0-9a-f]{64})", (archive / OFFLINE / "lock.txt").read_text()))


def verify(archive: Path) -> dict:
    """Every archived file against its checksum, every wanted wheel present, listed and locked.
    Raises ReplayError naming each problem; returns the archive's ``frozen.json``."""
    sums = checksums(archive)
    problems = []
    for rel, digest in sorted(sums.items()):
        path = archive / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif sha256(path) != digest:
            problems.append(f"{rel} is corrupted (its sha256 is not the one {CHECKSUMS} records): changed or truncated")
    info = json.loads((archive / "frozen.json").read_text())
    offline = info.get("offline")
    if not offline:
        raise ReplayError(f"{archive} was frozen without archive.wheelhouse: it holds no wheels to install")
    listed = {digest: rel for rel, digest in sums.items() if rel.startswith(f"{OFFLINE}/wheels/")}
    on_disk = {f"{OFFLINE}/wheels/{p.name}" for p in (archive / OFFLINE / "wheels").glob("*")}
    problems += [f"{rel} is not in {CHECKSUMS}" for rel in sorted(on_disk - set(sums))]
    built = {f"{OFFLINE}/wheels/{w}" for w in offline["built_from_sdists"]}
    locked = locked_hashes(archive) if (archive / OFFLINE / "lock.txt").is_file() else set()
    for digest, requirement in sorted(wanted_wheels(archive).items(), key=lambda kv: kv[1]):
        rel = listed.get(digest)
        if rel is None:
            problems.append(f"the wheel of {requirement} is missing (no file in {OFFLINE}/wheels has its sha256)")
        elif digest not in locked and rel not in built and not requirement.startswith("pip=="):
            problems.append(f"{rel} ({requirement}) is not a file the lock {offline['lock']} records")
    if problems:
        raise ReplayError("the archive failed its checks, nothing was installed:\n  " + "\n  ".join(problems))
    return info


def check_platform(offline: dict) -> None:
    here = f"{sys.platform} {os.uname().machine}"
    built = offline["built_on"]
    python = ".".join(map(str, sys.version_info[:2]))
    if (
        sys.implementation.name != "cpython"
        or python != offline["platform"]["python"]
        or here != (f"{built['system']} {built['machine']}")
    ):
        raise ReplayError(
            f"the archive's wheels are for {offline['platform']['describe']}; this is "
            f"{sys.implementation.name} {python} on {here}: run replay.py with such a Python"
        )


def clean_env(venv: Path | None = None, run: dict | None = None) -> dict[str, str]:
    """The environment for pip and the run: no pip or uv configuration, no PYTHONPATH or other
    venv; for the run, the variables that change what it writes as the original run had them
    (the manifest's ``rebuild.environment_variables``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "PYTHON", "VIRTUAL_ENV", "CONDA"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONNOUSERSITE="1",
    )
    for var, value in (run or {}).items():
        env.pop(var, None)
        if value is not None:
            env[var] = value
    if venv is not None:
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    return env


def run(cmd: list[str], log: Path, env: dict, cwd: Path | None = None) -> None:
    print("$", " ".join(map(str, cmd)), flush=True)
    with open(log, "a") as out:
        out.write("$ " + " ".join(map(str, cmd)) + "\n")
        out.flush()
        done = subprocess.run(list(map(str, cmd)), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    if done.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise ReplayError(f"{cmd[0]} ... exited {done.returncode} (log: {log}):\n{tail}")


def install(archive: Path, dest: Path, offline: dict) -> Path:
    """A fresh venv with the archived wheels, from the archive alone."""
    venv = dest / "venv"
    env = clean_env()
    run([sys.executable, "-m", "venv", "--without-pip", venv], dest / "install.log", env)
    wheels = archive / OFFLINE / "wheels"
    (pip,) = [p for p in wheels.glob("pip-*.whl")]
    python = venv / "bin" / "python"
    run(
        [python, pip / "pip", "install", "--no-index", "--find-links", wheels, "--only-binary", ":all:", "--no-compile"]
        + ["--require-hashes", "-r", archive / OFFLINE / "requirements.txt"],
        dest / "install.log",
        env,
    )
    return python


def unpack(archive: Path, dest: Path) -> Path:
    source = dest / "source"
    with tarfile.open(archive / OFFLINE / "source.tar.gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(source, filter="data")
        else:  # Python before 3.11.4: the archive's own names, checked
            for m in tar.getmembers():
                if m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                    raise ReplayError(f"{OFFLINE}/source.tar.gz holds an unsafe member {m.name!r}")
            tar.extractall(source)
    return source


def replay_config(archive: Path, dest: Path, manifest: dict) -> Path:
    """The run's own config (complete: every default filled in), replaying this archive."""
    config = manifest["config"]
    config["archive"] = {**config.get("archive", {}), "replay": str(archive), "wheelhouse": False}
    path = dest / "replay.json"  # Snakemake reads a JSON config file as it is
    # in the run's key order: the order of benchmarks and streams is the order they are sampled in
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def compare(results: Path, manifest: dict, frozen: set[str]) -> dict:
    """The replayed artifacts against the run's: ``frozen`` are those restored from the archive."""
    expected = manifest["artifacts"]
    got = {
        f.relative_to(results).as_posix(): f
        for f in sorted(results.rglob("*"))
        if f.is_file() and not f.relative_to(results).as_posix().startswith(SKIP)
    }
    missing = sorted(set(expected) - set(got))
    differ = sorted(rel for rel in set(expected) & set(got) if sha256(got[rel]) != expected[rel])
    restored = sorted(rel for rel in expected if rel in frozen)
    return {
        "artifacts": len(expected),
        "restored": len(restored),
        "recomputed": len(expected) - len(restored),
        "equal": len(expected) - len(missing) - len(differ),
        "differ": differ,
        "missing": missing,
        "extra": sorted(set(got) - set(expected)),
    }


def replay(archive: Path, dest: Path, cores: int) -> dict:
    times, t = {}, time.monotonic()
    info = verify(archive)
    offline = info["offline"]
    check_platform(offline)
    times["verify_s"] = time.monotonic() - t
    if dest.exists() and any(dest.iterdir()):
        raise ReplayError(f"{dest} is not empty: replay into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    print(f"archive checked: {len(checksums(archive))} files; installing {offline['wheels']} wheels", flush=True)
    t = time.monotonic()
    python = install(archive, dest, offline)
    times["install_s"] = time.monotonic() - t
    t = time.monotonic()
    source = unpack(archive, dest)
    manifest = json.loads((archive / OFFLINE / "manifest.json").read_text())
    config = replay_config(archive, dest, manifest)
    times["unpack_s"] = time.monotonic() - t
    t = time.monotonic()
    run(
        [python, "-m", "snakemake", "--snakefile", source / "Snakefile", "--directory", source]
        + ["--configfile", config, "--replace-workflow-config", "--cores", str(cores)],
        dest / "snakemake.log",
        clean_env(python.parent.parent, manifest["rebuild"]["environment_variables"]),
        cwd=source,
    )
    times["run_s"] = time.monotonic() - t
    t = time.monotonic()
    frozen = {rel for rel in checksums(archive) if not rel.startswith(OFFLINE + "/") and rel != "replay.py"}
    result = compare(source / "results", manifest, frozen)
    times["compare_s"] = time.monotonic() - t
    report = {"archive": str(archive), "source": manifest["git"], "cores": cores, **result, "times": times}
    (dest / "replay-report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Reinstall this frozen archive's software offline and replay the study from it."
    )
    parser.add_argument("dest", type=Path, help="a new folder: the venv, the source and the replayed results go here")
    parser.add_argument(
        "--cores", type=int, default=2, help="cores for Snakemake (default 2; CPU numerics follow thread counts)"
    )
    args = parser.parse_args(argv)
    archive = Path(__file__).resolve().parent
    try:
        report = replay(archive, args.dest, args.cores)
    except ReplayError as e:
        print(f"replay: {e}", file=sys.stderr)
        return 2
    ok = not report["differ"] and not report["missing"]
    print(
        f"replay {'reproduced' if ok else 'did NOT reproduce'} the run: {report['equal']} of "
        f"{report['artifacts']} artifacts equal to the archived sha256 ({report['restored']} restored from "
        f"the archive, {report['recomputed']} recomputed); {len(report['differ'])} differ, "
        f"{len(report['missing'])} missing; report: {args.dest / 'replay-report.json'}"
    )
    for rel in report["differ"] + report["missing"]:
        print(f"  not equal: {rel}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
