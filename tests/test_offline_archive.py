"""An archive that reinstalls itself offline (`archive.wheelhouse`): the wheels of the main
stack's lock, the source as it ran and the run's manifest, checked before anything is installed,
and a replay from nothing (a fresh folder, a bare Python, pip told --no-index, the checkout and
its venvs out of sight) that recomputes everything downstream of the frozen artifacts and
matches the archived checksums."""

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts.infrastructure import offline_replay
from scripts.infrastructure.archive import add_files, checksums, freeze, replayed
from scripts.infrastructure.locks import read_lock
from scripts.infrastructure.offline_replay import ReplayError, verify
from scripts.infrastructure.records import sha256
from scripts.infrastructure.wheelhouse import config_problems, source_tarball, wheel_key

from conftest import REPO, snakemake


def test_the_replay_script_needs_only_the_standard_library():
    # It is copied into every archive and runs before any package is installed.
    tree = ast.parse(Path(offline_replay.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names <= sys.stdlib_module_names, names - sys.stdlib_module_names


def test_wheel_file_names_give_the_locked_name_and_version():
    assert wheel_key("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl") == ("torch", "2.13.0+cpu")
    assert wheel_key("polars_runtime_32-2.1.0-cp39-abi3-manylinux_2_24_x86_64.whl") == ("polars-runtime-32", "2.1.0")
    assert wheel_key("foo-1.0-1build-py3-none-any.whl") == ("foo", "1.0")


def test_a_config_the_offline_archive_could_not_replay_is_named():
    config = {
        "archive": {"wheelhouse": True},
        "native_traces": {"backend": "transformers"},
        "evaluation": {"backend": "vllm"},
        "adaptation_cost": {"backend": "transformers"},
        "students": {"tiny": {"model": "builtin"}, "qwen": {"model": "Qwen/Qwen2.5-Math-1.5B"}},
    }
    found = config_problems(config)
    assert len(found) == 2 and "evaluation.backend is vllm" in found[0] and "students.qwen.model" in found[1]
    assert config_problems({**config, "archive": {"wheelhouse": False}}) == []


def test_a_replayed_directory_output_is_restored_from_its_archived_files(tmp_path, monkeypatch):
    # e.g. a trained reward model's `directory(".../model")`: the archive lists its files, not it
    model = tmp_path / "results" / "reward_models" / "tiny" / "orm" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model.parent / "train.json").write_text('{"loss": 1}')
    freeze([str(model.parent)], str(tmp_path / "results"), str(tmp_path / "frozen"), {})
    shutil.rmtree(model.parent)
    monkeypatch.chdir(tmp_path)
    outputs = ["results/reward_models/tiny/orm/model", "results/reward_models/tiny/orm/train.json"]
    assert replayed(SimpleNamespace(params={"replay": str(tmp_path / "frozen")}, output=outputs))
    assert (model / "config.json").read_text() == "{}" and (model.parent / "train.json").is_file()


# --- the checks before anything is installed (a small archive of fake wheels) ----------------------


@pytest.fixture
def small_archive(tmp_path):
    results = tmp_path / "results"
    (results / "native_traces").mkdir(parents=True)
    (results / "native_traces" / "tiny.jsonl").write_text('{"id": "p1"}\n')
    archive = tmp_path / "frozen"
    freeze([str(results / "native_traces" / "tiny.jsonl")], str(results), str(archive), {})
    wheels = archive / "offline" / "wheels"
    wheels.mkdir(parents=True)
    lock, reqs = [], []
    for name in ("alpha", "beta", "pip"):
        w = wheels / f"{name}-1.0-py3-none-any.whl"
        w.write_bytes(name.encode() * 1000)
        reqs.append(f"{name}==1.0 --hash=sha256:{sha256(w)}\n")
        if name != "pip":  # the installer is archived beside the lock, not in it
            lock.append(f"{name}==1.0 \\\n    --hash=sha256:{sha256(w)}\n")
    (archive / "offline" / "requirements.txt").write_text("".join(reqs))
    (archive / "offline" / "lock.txt").write_text("".join(lock))
    add_files(archive, {"offline": {"lock": "locks/main.txt", "built_from_sdists": {}, "wheels": 3}})
    return archive


def test_an_intact_archive_passes_its_checks(small_archive):
    assert verify(small_archive)["offline"]["wheels"] == 3
    assert "offline/wheels/alpha-1.0-py3-none-any.whl" in checksums(small_archive)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "offline/wheels/beta-1.0-py3-none-any.whl is corrupted"),
        ("delete", "offline/wheels/beta-1.0-py3-none-any.whl is missing"),
        ("delete_and_unlist", "the wheel of beta==1.0 is missing"),
        ("swap", "offline/wheels/beta-1.0-py3-none-any.whl (beta==1.0) is not a file the lock"),
        ("add", "offline/wheels/gamma-1.0-py3-none-any.whl is not in checksums.sha256"),
    ],
)
def test_a_tampered_or_missing_wheel_is_named_before_anything_is_installed(small_archive, tmp_path, damage, message):
    wheel = small_archive / "offline" / "wheels" / "beta-1.0-py3-none-any.whl"
    sums = small_archive / "checksums.sha256"
    if damage == "truncate":
        wheel.write_bytes(wheel.read_bytes()[:100])
    elif damage == "delete":
        wheel.unlink()
    elif damage == "delete_and_unlist":
        wheel.unlink()
        sums.write_text("".join(line for line in sums.read_text().splitlines(True) if "beta" not in line))
    elif damage == "swap":  # another file, its checksum and requirement made to agree, but not locked
        old = sha256(wheel)
        wheel.write_bytes(b"evil" * 100)
        for f in (sums, small_archive / "offline" / "requirements.txt"):
            f.write_text(f.read_text().replace(old, sha256(wheel)))
    else:
        (wheel.parent / "gamma-1.0-py3-none-any.whl").write_bytes(b"x")
    with pytest.raises(ReplayError, match="nothing was installed") as e:
        verify(small_archive)
    assert message in str(e.value)
    dest = tmp_path / "replay"
    with pytest.raises(ReplayError, match="failed its checks"):
        offline_replay.replay(small_archive, dest, 1)
    assert not dest.exists()


def test_an_archive_frozen_without_a_wheelhouse_is_named(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "a.json").write_text("{}")
    freeze([str(results / "a.json")], str(results), str(tmp_path / "frozen"), {})
    with pytest.raises(ReplayError, match="frozen without archive.wheelhouse"):
        verify(tmp_path / "frozen")


def test_the_source_is_the_checkout_as_it_ran_and_packs_byte_identically(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "Snakefile").write_text("rule all:\n")
    (repo / "scripts" / "a.py").write_text("A = 1\n")
    (repo / ".gitignore").write_text("results/\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    (repo / "scripts" / "a.py").write_text("A = 2\n")  # a local change
    (repo / "scripts" / "new.py").write_text("B = 1\n")  # untracked, not ignored
    (repo / "results").mkdir()
    (repo / "results" / "big.bin").write_text("ignored")
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    assert source_tarball(repo, first) == 4
    os.utime(repo / "Snakefile", (1_000_000_000, 1_000_000_000))  # another mtime, same content
    source_tarball(repo, second)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        assert tar.getnames() == [".gitignore", "Snakefile", "scripts/a.py", "scripts/new.py"]
        assert tar.extractfile("scripts/a.py").read() == b"A = 2\n"


# --- end to end on the CI-sized run -----------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_archive(ci_run, tmp_path_factory):
    """The CI-sized run (a copy: the config changes) frozen with its wheelhouse, then moved away
    from the run: the archive alone, as it would be shipped."""
    work = tmp_path_factory.mktemp("offline_run")
    shutil.copytree(ci_run, work, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns("frozen"))
    start = time.monotonic()
    snakemake(work, "freeze", edit="archive: {wheelhouse: true}")
    print(f"freeze with the wheelhouse: {time.monotonic() - start:.0f} s")
    shipped = tmp_path_factory.mktemp("shipped") / "frozen"
    shutil.move(work / "results" / "frozen", shipped)
    return {"archive": shipped, "run": work}


def size(folder: Path, prefix: str = "") -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and str(f).startswith(prefix))


@pytest.mark.from_scratch
@pytest.mark.e2e
def test_the_archive_holds_the_locked_wheels_the_source_and_the_manifest(offline_archive):
    archive = offline_archive["archive"]
    offline = json.loads((archive / "frozen.json").read_text())["offline"]
    lock = read_lock(REPO / "locks" / "main.txt")
    wheels = dict(wheel_key(w.name) for w in (archive / "offline" / "wheels").glob("*.whl"))
    assert {k: v["version"] for k, v in lock.items()} == {k: v for k, v in wheels.items() if k != "pip"}
    assert wheels["torch"] == "2.13.0+cpu" and offline["lock"] == "locks/main.txt"
    assert offline["built_from_sdists"], "connection-pool is published as an sdist only: built into a wheel"
    sums = checksums(archive)
    assert {"replay.py", "offline/source.tar.gz", "offline/manifest.json", "offline/requirements.txt"} <= set(sums)
    assert all(f"offline/wheels/{w.name}" in sums for w in (archive / "offline" / "wheels").iterdir())
    with tarfile.open(archive / "offline" / "source.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"Snakefile", "locks/main.txt", "scripts/infrastructure/offline_replay.py"} <= names
    assert not [n for n in names if n.startswith((".venv", "results/", ".snakemake"))]
    rebuild = json.loads((archive / "offline" / "manifest.json").read_text())["rebuild"]
    assert rebuild["lock"] == "locks/main.txt" and "CPython 3.11" in rebuild["platform"]
    assert "replay.py" in rebuild["offline"] and "--require-hashes" in rebuild["venv"]
    total, wheels_size = size(archive), size(archive, str(archive / "offline" / "wheels"))
    print(f"archive: {total / 1e6:.1f} MB, {(total - wheels_size) / 1e6:.1f} MB without its wheels")


def can_hide(path: Path) -> bool:
    """Whether a private mount namespace can lay an empty folder over ``path`` (root on Linux)."""
    unshare = shutil.which("unshare")
    probe = f'mount -t tmpfs none {path} && test -z "$(ls -A {path})"'
    return (
        bool(unshare) and subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c", probe]).returncode == 0
    )


@pytest.mark.from_scratch
@pytest.mark.e2e
def test_a_replay_from_nothing_reinstalls_offline_and_reproduces_every_artifact(offline_archive, ci_run, tmp_path):
    archive, fresh = offline_archive["archive"], tmp_path / "fresh"
    (fresh / "home").mkdir(parents=True)
    python = getattr(sys, "_base_executable", sys.executable)  # the bare interpreter, not the venv's
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(fresh / "home"), "LANG": "C.UTF-8"}
    env |= {k: os.environ[k] for k in ("PIP_FIND_LINKS",) if k in os.environ}  # shown the way; must not use it
    cmd = [python, str(archive / "replay.py"), str(fresh / "replay")]
    # Out of sight: the checkout (and its venvs), the run the archive came from, pip's wheel folders.
    hide = [REPO, offline_archive["run"], ci_run, *map(Path, os.environ.get("PIP_FIND_LINKS", "").split())]
    hidden = can_hide(REPO)
    if hidden:
        mounts = " && ".join(f"mount -t tmpfs none {p}" for p in hide if p.is_dir())
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"', "sh", *cmd]
    start = time.monotonic()
    out = subprocess.run(cmd, cwd=fresh, env=env, capture_output=True, text=True, timeout=1800)
    print(f"replay from nothing: {time.monotonic() - start:.0f} s (checkout hidden: {hidden})\n{out.stdout[-1500:]}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((fresh / "replay" / "replay-report.json").read_text())
    assert report["differ"] == [] and report["missing"] == []
    assert report["restored"] >= 20 and report["recomputed"] >= 50, report
    assert report["equal"] == report["artifacts"] == report["restored"] + report["recomputed"]
    install = (fresh / "replay" / "install.log").read_text()
    assert "install --no-index --find-links" in install and "--require-hashes" in install
    logs = fresh / "replay" / "source" / "results" / "logs"
    assert "restored 1 files from the frozen archive" in (logs / "native_traces" / "tiny.log").read_text()
    assert "restored" not in next(iter((logs / "training").rglob("*.log"))).read_text()  # trained again
    for f in [*logs.rglob("*.log"), fresh / "replay" / "snakemake.log", fresh / "replay" / "venv" / "pyvenv.cfg"]:
        assert str(REPO) not in f.read_text(), f"{f} names the checkout"
    print(json.dumps(report["times"]))
