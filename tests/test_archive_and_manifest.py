from types import SimpleNamespace

import pytest

from scripts.infrastructure.archive import checksums, freeze, replayed, restore
from scripts.infrastructure.manifest import artifacts, seeds
from scripts.infrastructure.provenance import config_hash, git_state
from scripts.infrastructure.records import sha256
from scripts.infrastructure.stage_log import StageError


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
