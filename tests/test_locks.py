"""The lock files (locks/): one per software stack, compiled from the pins that pyproject.toml,
tests/vllm-requirements.txt and envs/*.yaml make now, every package exact and hashed, for the
platform the stack runs on. A pin changed without `make locks` fails here."""

from pathlib import Path

import pytest

from scripts.infrastructure.locks import (
    CLUSTER,
    CPU,
    PIN,
    Stack,
    canonical,
    differences,
    fingerprint,
    lock_header,
    normalise,
    read_lock,
    requirements,
    runs_here,
    stacks,
)

REPO = Path(__file__).resolve().parents[1]
STACKS = stacks(REPO)


def test_every_stack_has_a_lock_the_main_one_vllms_cpu_build_and_each_conda_env():
    envs = {f"env-{p.stem}" for p in (REPO / "envs").glob("*.yaml")}
    assert set(STACKS) == {"main", "vllm-cpu"} | envs
    missing = [s.lock for s in STACKS.values() if not (REPO / s.lock).is_file()]
    assert not missing, f"no lock file {missing}: run `make locks`"


@pytest.mark.parametrize("stack", STACKS.values(), ids=lambda s: s.name)
def test_a_lock_was_compiled_from_its_source_as_it_is_now(stack):
    header = lock_header(REPO / stack.lock)
    assert header["inputs-sha256"] == fingerprint(stack, REPO), (
        f"{stack.source} changed since {stack.lock} was made: run `make locks` and commit the lock"
    )
    assert header["platform"].startswith(f"{stack.platform.name}: ")


@pytest.mark.parametrize("stack", STACKS.values(), ids=lambda s: s.name)
def test_a_lock_holds_every_pin_of_its_source_exactly_and_every_package_hashed(stack):
    lock = read_lock(REPO / stack.lock)
    wrong = []
    for requirement in requirements(stack, REPO):
        name, _, version, _ = PIN.match(requirement).groups()
        locked = lock.get(normalise(name))
        # a local version label (torch's "+cpu") names the build of the same release
        if locked is None or locked["version"].split("+")[0] != version:
            wrong.append(f"{requirement}: the lock has {locked and locked['version']}")
    assert not wrong, f"{stack.lock} disagrees with {stack.source}: {wrong}"
    unhashed = [k for k, v in lock.items() if not v["hashes"]]
    assert not unhashed and len(lock) > len(requirements(stack, REPO)), unhashed


def test_cpu_stacks_lock_torchs_cpu_build_and_the_cluster_envs_pypis_cuda_build():
    for name in ("main", "vllm-cpu"):
        assert STACKS[name].platform == CPU
        assert read_lock(REPO / STACKS[name].lock)["torch"]["version"] == "2.13.0+cpu", name
    training = read_lock(REPO / STACKS["env-training"].lock)
    assert STACKS["env-training"].platform == CLUSTER and training["torch"]["version"] == "2.13.0"
    assert any(k.startswith("nvidia-") for k in training), "PyPI's torch for Linux brings CUDA libraries"
    assert "torch" not in read_lock(REPO / STACKS["env-data"].lock)  # the data stages run without torch


def test_a_changed_pin_changes_the_fingerprint_and_spelling_does_not(tmp_path):
    (tmp_path / "tests").mkdir()
    reqs = tmp_path / "tests" / "vllm-requirements.txt"
    stack = Stack("x", "tests/vllm-requirements.txt", CPU)
    reqs.write_text("Math_Verify[ANTLR4_13_2]==0.9.0\ntorch==2.13.0  # a comment\n")
    before = fingerprint(stack, tmp_path)
    reqs.write_text("# spelled otherwise\ntorch==2.13.0\nmath-verify[antlr4-13-2]==0.9.0\n")
    assert fingerprint(stack, tmp_path) == before
    reqs.write_text("torch==2.13.1\nmath-verify[antlr4-13-2]==0.9.0\n")
    assert fingerprint(stack, tmp_path) != before
    assert canonical("A_B.c[Y,x]==1.0 ; python_version < '3.12'") == "a-b-c[x,y]==1.0; python_version < '3.12'"
    with pytest.raises(ValueError, match="not an exact pin"):
        canonical("torch>=2.13")


def test_read_lock_reads_versions_and_hashes_and_refuses_a_package_pinned_twice(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# platform: p: somewhere\n# inputs-sha256: abc\ntorch==2.13.0+cpu \\\n    --hash=sha256:" + "a" * 64 + "\n"
        "    # via\n    #   x\nPyYAML==6.0.4 \\\n    --hash=sha256:"
        + "b" * 64
        + " \\\n    --hash=sha256:"
        + "c" * 64
        + "\n"
    )
    got = read_lock(lock)
    assert got["torch"] == {"name": "torch", "version": "2.13.0+cpu", "hashes": ["a" * 64]}
    assert got["pyyaml"]["hashes"] == ["b" * 64, "c" * 64]
    assert lock_header(lock) == {"platform": "p: somewhere", "inputs-sha256": "abc"}
    assert differences(got, {"PyYAML": "6.0.4", "torch": "2.13.0"}) == {"torch": "locked 2.13.0+cpu, installed 2.13.0"}
    lock.write_text(lock.read_text() + "pyyaml==6.0.3 \\\n    --hash=sha256:" + "d" * 64 + "\n")
    with pytest.raises(ValueError, match="pinned twice"):
        read_lock(lock)


def test_a_lock_says_which_machines_can_install_it():
    here = {
        "system": "linux",
        "machine": "x86_64",
        "python": "3.11.9",
        "implementation": "cpython",
        "libc": "glibc 2.31",
    }
    assert runs_here(CPU, here) is None
    mac = {"system": "darwin", "machine": "arm64", "python": "3.12.1", "implementation": "cpython", "libc": ""}
    why = runs_here(CPU, mac)
    assert "darwin" in why and "arm64" in why and "3.12.1" in why and "CPython 3.11" in why
    assert "glibc 2.17" in runs_here(CPU, {**here, "libc": "glibc 2.17"})


def test_make_locks_regenerates_them_with_uv():
    text = (REPO / "Makefile").read_text()
    assert "\nlocks:" in text and "scripts.infrastructure.locks" in text
    assert "uv" in {normalise(PIN.match(r).group(1)) for r in _test_extras()}


def _test_extras() -> list[str]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
