"""What makes a frozen archive reinstall itself offline (``archive.wheelhouse``): the wheels of
the main stack's lock for this platform, the project's source as it ran, the run's manifest
(whose artifact checksums a replay must reproduce) and the replay script, under ``offline/``
in the archive, each file in the archive's ``checksums.sha256``.

The archive then needs only a CPython of the lock's platform: ``python3 <archive>/replay.py
<new folder>`` (``scripts/infrastructure/offline_replay.py``, copied in) checks every file,
installs the wheels with ``pip install --no-index`` into a fresh venv, unpacks the source and
reruns the study from the frozen artifacts.
"""

import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from scripts.infrastructure import offline_replay
from scripts.infrastructure.locks import Stack, differences, normalise, read_lock, runs_here, this_platform
from scripts.infrastructure.records import read_json, sha256
from scripts.infrastructure.stage_log import StageError

OFFLINE = offline_replay.OFFLINE  # the archive's folder for all of it
WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def config_problems(config: dict) -> list[str]:
    """What an offline archive cannot replay, each naming its key: the wheelhouse holds the main
    stack only (not vLLM's), and of the students only the built-in ones (their weights)."""
    if not config["archive"]["wheelhouse"]:
        return []
    out = [
        f"archive.wheelhouse: {stage}.backend is vllm, but the offline archive holds the main stack's wheels "
        "(locks/main.txt) only, so its replay could not run vLLM; use the transformers backend or freeze without "
        "the wheelhouse"
        for stage in ("native_traces", "evaluation", "adaptation_cost")
        if config[stage]["backend"] == "vllm"
    ]
    out += [
        f"archive.wheelhouse: students.{name}.model is {spec['model']!r}, whose weights the archive does not hold "
        "(it holds built-in students only), so a replay from nothing could not load it"
        for name, spec in config["students"].items()
        if spec["model"] != "builtin"
    ]
    return out


def source_files(repo: str | os.PathLike) -> list[str]:
    """The checkout's files as they are on disk: tracked ones (local changes included) and
    untracked ones git does not ignore, i.e. the code this run ran."""
    out = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise StageError(f"archive.wheelhouse: {repo} is not a git checkout, so its source cannot be listed")
    return sorted({f for f in out.stdout.split("\0") if f and (Path(repo) / f).is_file()})


def source_tarball(repo: str | os.PathLike, dest: str | os.PathLike) -> int:
    """The source as a gzipped tar, byte-identical for the same files (names sorted, times and
    owners zeroed). Returns the number of files."""
    files = source_files(repo)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            path = Path(repo) / rel
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = path.stat().st_size, 0o755 if os.access(path, os.X_OK) else 0o644, 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())
    return len(files)


def wheel_key(filename: str) -> tuple[str, str]:
    m = WHEEL.match(filename)
    if not m:
        raise StageError(f"{filename} is not a wheel file name")
    return normalise(m["name"]), m["version"]


def pip(python: str, *args: str) -> None:
    out = subprocess.run([python, "-m", "pip", *args, "--progress-bar", "off"], capture_output=True, text=True)
    print(out.stdout[-4000:], out.stderr[-4000:], sep="\n")
    if out.returncode != 0:
        raise StageError(f"pip {args[0]} failed (exit {out.returncode}): {out.stderr.strip()[-600:]}")


def collect_wheels(lock_path: str | os.PathLike, dest: str | os.PathLike, python: str = sys.executable) -> dict:
    """Every package of the lock as a wheel for this platform in ``dest/wheels`` (pip checks each
    download against the lock's hashes; a package published only as an sdist is kept in
    ``dest/sdists`` and built into a wheel), plus pip itself, and ``dest/requirements.txt``: each
    wheel by version and sha256, what the replay installs."""
    dest = Path(dest)
    download, wheels, sdists = dest / "download", dest / "wheels", dest / "sdists"
    for d in (download, wheels, sdists):
        d.mkdir(parents=True, exist_ok=True)
    lock = read_lock(lock_path)
    pip(python, "download", "--no-deps", "--require-hashes", "--dest", str(download), "-r", str(lock_path))
    installer = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True).stdout.split()[1]
    pip(python, "download", "--no-deps", "--only-binary", ":all:", "--dest", str(wheels), f"pip=={installer}")
    built = {}
    for f in sorted(download.iterdir()):
        if f.suffix == ".whl":
            shutil.move(f, wheels / f.name)
            continue
        shutil.move(f, sdists / f.name)
        before = set(wheels.iterdir())
        pip(python, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(sdists / f.name))
        (new,) = set(wheels.iterdir()) - before
        built[new.name] = f.name
    download.rmdir()
    lines, found = [], {}
    for w in sorted(wheels.iterdir()):
        name, version = wheel_key(w.name)
        digest = sha256(w)
        locked = lock.get(name)
        if name != "pip" and (locked is None or locked["version"] != version):
            raise StageError(f"{w.name} is not in the lock {lock_path} as {name}=={version}")
        if name != "pip" and w.name not in built and digest not in locked["hashes"]:
            raise StageError(f"{w.name}: sha256 {digest[:12]}... is not one the lock {lock_path} records")
        found[name] = w.name
        lines.append(f"{name}=={version} --hash=sha256:{digest}\n")
    missing = sorted(set(lock) - set(found))
    if missing:
        raise StageError(f"no wheel for {missing} of the lock {lock_path}")
    (dest / "requirements.txt").write_text("".join(lines))
    return {"wheels": len(lines), "pip": installer, "built_from_sdists": built}


def add_offline(archive: str | os.PathLike, repo: str | os.PathLike, stack: Stack, manifest: str, python: str) -> dict:
    """Write ``offline/`` and ``replay.py`` into a frozen archive for the stack's lock (the
    main stack's: the venv every stage runs in); returns what ``frozen.json`` records of it."""
    archive, repo = Path(archive), Path(repo)
    why_not = runs_here(stack.platform)
    if why_not:
        raise StageError(f"archive.wheelhouse: {stack.lock} cannot be collected on this machine: {why_not}")
    out = archive / OFFLINE
    out.mkdir(parents=True)
    shutil.copyfile(repo / stack.lock, out / "lock.txt")
    shutil.copyfile(manifest, out / "manifest.json")
    files = source_tarball(repo, out / "source.tar.gz")
    shutil.copyfile(offline_replay.__file__, archive / "replay.py")
    wheels = collect_wheels(repo / stack.lock, out, python)
    run = read_json(manifest)
    return {
        "command": "python3 replay.py <new folder>",
        "lock": stack.lock,
        "lock_sha256": sha256(repo / stack.lock),
        "platform": {
            "name": stack.platform.name,
            "python": stack.platform.python,
            "describe": stack.platform.describe(),
        },
        "built_on": this_platform(),
        "source": {**run["git"], "files": files},
        "environment_differs_from_lock": differences(read_lock(repo / stack.lock), run["environment"]["packages"]),
        **wheels,
    }
