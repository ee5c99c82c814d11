"""The project's structure: layers without import cycles, stages that nothing imports, project
imports inside functions only where a registry loads an implementation, code versions that see
what code does and nothing else, and a config schema that parses to what its author wrote."""

import ast
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from scripts.infrastructure import provenance

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
MODULES = {
    ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
    for p in sorted(SCRIPTS.rglob("*.py"))
}


def imported(path: Path) -> set[str]:
    """Project modules a file names in an import statement, anywhere in it (the longest project
    module each dotted name starts with, as the import system resolves it)."""
    out = set()
    for name in provenance.imported_names(ast.walk(ast.parse(path.read_text()))):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and MODULES[name] != path:
            out.add(name)
    return out


def stages_run_by_rules() -> dict[str, str]:
    """module -> rule, for every rule's ``script:``."""
    out = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            script = re.search(r'^    script:\n\s+"([^"]+)"', block, re.M)
            if script:
                path = (smk.parent / script.group(1)).resolve()
                out[".".join(path.relative_to(REPO).with_suffix("").parts)] = name
    return out


def test_the_layers_are_packages_a_newcomer_sees_with_ls():
    assert {p.name for p in SCRIPTS.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "stages",
        "backends",
        "training",
        "analysis",
        "data",
        "organism",
        "infrastructure",
    }
    assert not [p.name for p in SCRIPTS.glob("*.py") if p.name != "__init__.py"], "a module outside every layer"


def test_there_are_no_import_cycles_among_project_modules():
    graph = {m: imported(p) for m, p in MODULES.items()}
    cycles, state = [], {}

    def visit(m, trail):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                cycles.append(trail[trail.index(d) :] + [d])
            elif d not in state:
                visit(d, trail + [d])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_every_rule_runs_a_stage_module_and_nothing_imports_a_stage():
    stages = stages_run_by_rules()
    assert set(stages) == {m for m in MODULES if m.startswith("scripts.stages.")}
    importers = {m: sorted(imported(p) & set(stages)) for m, p in MODULES.items()}
    assert not {m: s for m, s in importers.items() if s}
    for other in sorted((REPO / "tests").glob("*.py")) + sorted((REPO / "benchmarks").glob("*.py")):
        names = provenance.imported_names(ast.walk(ast.parse(other.read_text())))
        assert not [n for n in names if n.startswith("scripts.stages")], f"{other.name} imports a stage"


def loader_functions(tree: ast.Module) -> set[ast.AST]:
    """Functions registered in a Registry (decorated with ``@<registry>.register(...)``)."""
    return {
        f
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        and any(
            isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "register"
            for d in f.decorator_list
        )
    }


def test_project_modules_are_imported_inside_a_function_only_by_registry_loaders():
    # Anywhere else, an import in a function body would hide a dependency from the code version.
    hidden = []
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text())
        loaders = loader_functions(tree)
        for f in ast.walk(tree):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f not in loaders:
                names = provenance.imported_names(ast.walk(f))
                if provenance.project_modules(names, REPO):
                    hidden.append(f"{m}.{f.name}")
    assert not hidden, hidden


# --- code versions -------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path):
    """A small project laid out like this one: a stage, a helper, a registry of two backends."""
    root = tmp_path / "repo"
    (root / "scripts" / "stages").mkdir(parents=True)
    files = {
        "scripts/__init__.py": "",
        "scripts/stages/__init__.py": "",
        "scripts/helper.py": "X = 1\n",
        "scripts/other.py": "Y = 1\n",
        "scripts/backend_a.py": "A = 1\n",
        "scripts/backend_b.py": "B = 1\n",
        "scripts/registry.py": textwrap.dedent('''\
            """Backends."""

            class Registry:
                def __init__(self):
                    self.loaders = {}

                def register(self, name):
                    def add(f):
                        self.loaders[name] = f
                        return f
                    return add

            BACKENDS = Registry()

            @BACKENDS.register("a")
            def _a():
                from scripts.backend_a import A
                return A

            @BACKENDS.register("b")
            def _b():
                from scripts.backend_b import B
                return B
            '''),
        "scripts/stages/stage.py": textwrap.dedent("""\
            from scripts.helper import X
            from scripts.registry import BACKENDS


            def main():
                return BACKENDS, X
            """),
    }
    for rel, text in files.items():
        (root / rel).write_text(text)
    return root


def version(root, *backends):
    """The stage's code version with the named backends chosen (caches cleared: files change)."""
    import importlib.util

    provenance.imports.cache_clear()
    provenance.behaviour.cache_clear()
    provenance._tree.cache_clear()
    spec = importlib.util.spec_from_file_location("registry_under_test", root / "scripts" / "registry.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaders = [module.BACKENDS.loaders[b] for b in backends]
    return provenance.code_version(root / "scripts" / "stages" / "stage.py", loaders, root=root)


def edit(root, rel, old, new):
    path = root / rel
    path.write_text(path.read_text().replace(old, new))


def test_a_comment_a_docstring_or_a_reformat_changes_no_code_version(project):
    before = version(project, "a")
    edit(project, "scripts/registry.py", '"""Backends."""', '"""Backends, chosen by config."""\n# a comment')
    edit(project, "scripts/helper.py", "X = 1", "X = (\n    1  # why\n)")
    edit(project, "scripts/stages/stage.py", "def main():", "def main():  # the stage\n    '''Doc.'''")
    assert version(project, "a") == before


def test_a_behavioural_edit_changes_the_versions_of_the_stages_that_import_it(project):
    before = version(project, "a")
    edit(project, "scripts/other.py", "Y = 1", "Y = 2")  # imported by nothing
    assert version(project, "a") == before
    edit(project, "scripts/helper.py", "X = 1", "X = 2")  # imported by the stage, at module level
    assert version(project, "a") != before


def test_only_the_chosen_implementation_counts(project):
    a, b = version(project, "a"), version(project, "b")
    edit(project, "scripts/backend_b.py", "B = 1", "B = 2")
    assert version(project, "a") == a  # the stage's config chooses backend a
    assert version(project, "b") != b
    assert version(project) != a  # no implementation at all is another version


def test_the_workflow_passes_a_code_version_to_every_rule():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            assert re.search(r"^        code=", block, re.M), f"rule {name} passes no code version"


# --- the config schema -------------------------------------------------------------------------------

KEYWORDS = {
    "type",
    "description",
    "default",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "uniqueItems",
    "pattern",
    "patternProperties",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "$ref",
    "$defs",
    "$schema",
    "title",
    "const",
    "minLength",
    "maxLength",
    "format",
    "examples",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "if",
    "then",
    "else",
}
VALUES = {"default", "examples", "enum", "const"}  # their contents are data, not schema


def schema_nodes(node, path=""):
    """(path, schema object) of every schema in the document."""
    if not isinstance(node, dict):
        return
    yield path, node
    for key, sub in node.items():
        if key in VALUES:
            continue
        if key in ("properties", "$defs", "patternProperties"):
            for name, child in sub.items():
                yield from schema_nodes(child, f"{path}{name}.")
        elif key in ("items", "additionalProperties", "not", "if", "then", "else") and isinstance(sub, dict):
            yield from schema_nodes(sub, f"{path}{key}.")
        elif key in ("anyOf", "oneOf", "allOf"):
            for i, child in enumerate(sub):
                yield from schema_nodes(child, f"{path}{key}[{i}].")


def test_the_schema_parses_to_json_schema_keywords_and_whole_descriptions():
    # A flow mapping whose unquoted description holds a comma parses into a truncated
    # description plus a stray key: both are caught here.
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    stray, cut = [], []
    for path, node in schema_nodes(schema):
        stray += [f"{path}{k}" for k in node if k not in KEYWORDS]
        text = node.get("description")
        if isinstance(text, str) and not text.rstrip().endswith((".", ")", ":", "?", "'", '"')):
            cut.append(f"{path}: {text!r}")
    assert not stray, stray
    assert not cut, cut


def test_a_schema_line_with_an_unquoted_comma_would_be_caught(tmp_path):
    broken = "properties:\n  x: {type: number, description: Share (rare, not unseen).}\n"
    nodes = dict(schema_nodes(yaml.safe_load(broken)))
    assert "not unseen)." in nodes["x."]  # the stray key the test above refuses
