import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts.infrastructure.archive import checksums, freeze, replayed, restore
from scripts.infrastructure.manifest import RUN_ENVIRONMENT, artifacts, seeds
from scripts.infrastructure.provenance import config_hash, git_state
from scripts.infrastructure.records import sha256
from scripts.infrastructure.stage_log import CPU_KERNELS, StageError, same_kernels_on_every_cpu

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def frozen(tmp_path):
    results = tmp_path / "results"
    (results / "native_traces").mkdir(parents=True)
    (results / "native_traces" / "tiny.jsonl").write_text('{"id": "p1", "trace": "x"}\n' * 50)
    (results / "student" / "tiny" / "model").mkdir(parents=True)
    (results / "student" / "tiny" / "student.json").write_text('{"path": "results/student/tiny/model"}')
    (results / "student" / "tiny" / "model" / "weights.bin").write_bytes(b"\x00\x01" * 100)
    n = freeze(
        [str(results / "native_traces" / "tiny.jsonl"), str(results / "student" / "tiny")],
        str(results),
        str(tmp_path / "frozen"),
        {"config_sha256": "abc"},
    )
    assert n == 3
    return tmp_path / "frozen"


def test_frozen_files_carry_their_checksums(frozen):
    sums = checksums(frozen)
    assert set(sums) == {"native_traces/tiny.jsonl", "student/tiny/student.json", "student/tiny/model/weights.bin"}
    assert all(sha256(frozen / rel) == d for rel, d in sums.items())


def test_restore_copies_a_verified_file(frozen, tmp_path):
    restore(frozen, "native_traces/tiny.jsonl", tmp_path / "out.jsonl")
    assert (tmp_path / "out.jsonl").read_bytes() == (frozen / "native_traces/tiny.jsonl").read_bytes()


@pytest.mark.parametrize("damage", ["tamper", "truncate"])
def test_a_damaged_archived_artifact_is_refused_by_name(frozen, tmp_path, damage):
    f = frozen / "native_traces/tiny.jsonl"
    data = f.read_bytes()
    f.write_bytes(data.replace(b'"x"', b'"y"', 1) if damage == "tamper" else data[: len(data) // 2])
    with pytest.raises(StageError, match="native_traces/tiny.jsonl is corrupted"):
        restore(frozen, "native_traces/tiny.jsonl", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_folder_that_is_not_an_archive_is_named(tmp_path):
    with pytest.raises(StageError, match="not a frozen archive"):
        restore(tmp_path, "x", tmp_path / "y")


def test_replayed_restores_a_jobs_outputs_and_archived_folders(frozen, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "results" / "..")
    job = SimpleNamespace(params={"replay": str(frozen)}, output=["results/student/tiny/student.json"])
    for f in (tmp_path / "results" / "student").rglob("*"):
        if f.is_file():
            f.unlink()
    assert replayed(job, folders=("results/student/tiny/model",))
    assert (tmp_path / "results/student/tiny/model/weights.bin").read_bytes() == b"\x00\x01" * 100
    assert not replayed(SimpleNamespace(params={"replay": None}, output=[]))


def test_manifest_pieces(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.log").write_text("noise")
    (tmp_path / "a.json").write_text("{}")
    assert set(artifacts(str(tmp_path), skip=("logs/",))) == {"a.json"}
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1}) != config_hash({"a": 2, "b": 2})
    assert seeds({"x": {"seed": 3}, "training": {"seeds": [0, 1]}}) == {"x.seed": 3, "training.seeds": [0, 1]}
    assert git_state(str(tmp_path)) == {"commit": None, "dirty": None}  # not a repository


AVX2_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f\n"


@pytest.mark.parametrize(
    "cpuinfo, preset, expected",
    [
        (AVX2_CPU, {}, CPU_KERNELS),  # every variable pinned to AVX2
        # a variable the user set wins
        (AVX2_CPU, {"ATEN_CPU_CAPABILITY": "avx512"}, {**CPU_KERNELS, "ATEN_CPU_CAPABILITY": "avx512"}),
        ("flags\t\t: fpu sse2 avx\n", {}, {}),  # no AVX2: the libraries choose
        (None, {}, {}),  # no /proc/cpuinfo
    ],
)
def test_the_float_kernels_are_pinned_to_avx2_where_the_cpu_has_it(tmp_path, monkeypatch, cpuinfo, preset, expected):
    for var in CPU_KERNELS:
        monkeypatch.delenv(var, raising=False)
    for var, value in preset.items():
        monkeypatch.setenv(var, value)
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    same_kernels_on_every_cpu(str(path))
    assert {var: os.environ[var] for var in CPU_KERNELS if var in os.environ} == expected


@pytest.mark.skipif(
    not Path("/proc/cpuinfo").exists() or " avx2" not in Path("/proc/cpuinfo").read_text(), reason="no AVX2 CPU"
)
def test_a_stage_runs_torch_on_the_avx2_kernels_whatever_the_cpu_has_beyond(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in CPU_KERNELS}
    code = (
        "from scripts.infrastructure.stage_log import logged\n"
        "with logged(None):\n"
        "    import torch\n"
        "    print(torch.backends.cpu.get_cpu_capability())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "AVX2"
    # the manifest records them, and an offline replay sets them as the run had them
    assert set(CPU_KERNELS) <= set(RUN_ENVIRONMENT)
