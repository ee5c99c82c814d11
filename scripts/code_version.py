"""Make project code visible to Snakemake's rerun triggers.

Snakemake's code trigger sees the script a rule runs, not the modules that script imports.
``code_version(path)`` hashes a stage script together with every ``scripts.*`` module it
imports, transitively; rules pass it as a param, so editing an imported helper reruns exactly
the jobs whose code changed."""


import ast
import hashlib
from functools import cache
from pathlib import Path


def direct_imports(path: Path) -> set[Path]:
    """The project modules one file imports (``scripts.x`` or ``from scripts import x``)."""
    deps = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "scripts":
            parts = node.module.split(".")[1:]
            names = [parts] if parts else [[a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1:] for a in node.names if a.name.startswith("scripts.")]
        deps |= {path.parent.joinpath(*parts).with_suffix(".py") for parts in names if parts}
    return {d for d in deps if d.exists()}


@cache
def project_imports(path: Path) -> frozenset[Path]:
    """The project modules a file imports, transitively, itself included."""
    seen, todo = {path}, [path]
    while todo:
        for dep in direct_imports(todo.pop()) - seen:
            seen.add(dep)
            todo.append(dep)
    return frozenset(seen)


def code_version(path: str | Path) -> str:
    path = Path(path).resolve()
    h = hashlib.sha256()
    for f in sorted(project_imports(path)):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]
