"""What code and which environment made an artifact.

**Code versions for Snakemake's rerun triggers.** Snakemake sees a rule's params, not the
modules its script imports. ``code_version(stage, implementations)`` hashes a stage module
together with the project modules it imports at module level, transitively, plus the code of
the implementations the config chooses for it (registry loaders, see
``scripts.infrastructure.registry``). Each module counts by its *syntax tree* with docstrings
removed, so a comment, a docstring or reformatting changes no hash and reruns nothing, while any
change to what the code does reruns exactly the jobs whose stage uses it. Rules pass the hash as
a param (``code=``).

**The environment.** The git state of the checkout, a hash of the resolved config, the packages
installed where a job ran, and the pins each declared conda env makes.
"""

import ast
import hashlib
import inspect
import json
import subprocess
import textwrap
from collections.abc import Callable, Iterable
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGE = "scripts"
ROOT = Path(__file__).resolve().parents[2]  # the checkout: scripts/ lives here


def module_path(name: str, root: Path = ROOT) -> Path | None:
    """The file of a project module (``scripts.a.b``), or None if it is not one."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(nodes: Iterable[ast.AST]) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """Statements that run when the module is imported (function bodies do not)."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        todo += list(ast.iter_child_nodes(node))
    return out


def project_modules(names: set[str], root: Path) -> set[Path]:
    found = set()
    for name in names:
        path = module_path(name, root)
        if path is not None:
            found.add(path)
            # importing a.b.c runs a/__init__.py and a/b/__init__.py first
            for i in range(2, len(name.split("."))):
                parent = module_path(".".join(name.split(".")[:i]), root)
                if parent is not None:
                    found.add(parent)
    return found


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def direct_imports(path: Path, lazy: bool = False, root: Path = ROOT) -> set[Path]:
    """Project modules a file imports: at module level, or anywhere with ``lazy``."""
    tree = _tree(path)
    nodes = ast.walk(tree) if lazy else _module_level(tree)
    return project_modules(imported_names(nodes), root) - {path}


@cache
def imports(path: Path, lazy: bool = False, root: Path = ROOT) -> frozenset[Path]:
    """The project modules a file imports, transitively, itself included."""
    seen, todo = {path}, [path]
    while todo:
        for dep in direct_imports(todo.pop(), lazy, root) - seen:
            seen.add(dep)
            todo.append(dep)
    return frozenset(seen)


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


@cache
def behaviour(path: Path) -> str:
    """A module's code as its syntax tree without docstrings: blind to comments and layout."""
    return ast.dump(_without_docstrings(ast.parse(path.read_text(encoding="utf-8"))))


def loader_modules(loader: Callable, root: Path = ROOT) -> set[Path]:
    """The project modules a registry loader imports in its body."""
    source = textwrap.dedent(inspect.getsource(loader))
    return project_modules(imported_names(ast.walk(ast.parse(source))), root)


def code_version(stage: str | Path, implementations: Iterable[Callable] = (), root: Path = ROOT) -> str:
    """Hash of a stage module, what it imports, and the chosen implementations' code."""
    stage = Path(stage).resolve()
    files = set(imports(stage, False, root))
    for loader in implementations:
        for module in loader_modules(loader, root):
            files |= imports(module, False, root)
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + behaviour(f).encode() + b"\0")
    return h.hexdigest()[:16]


# -- the environment -------------------------------------------------------------------------------


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def git_state(repo: str | Path) -> dict:
    def git(*args):
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def installed_packages() -> dict[str, str]:
    return dict(sorted({d.metadata["Name"].lower(): d.version for d in metadata.distributions()}.items()))


def declared_environments(env_dir: str | Path) -> dict[str, list[str]]:
    import yaml

    out = {}
    for f in sorted(Path(env_dir).glob("*.yaml")):
        spec = yaml.safe_load(f.read_text())
        deps = []
        for d in spec.get("dependencies", []):
            deps += d["pip"] if isinstance(d, dict) else [d]
        out[f.name] = deps
    return out
