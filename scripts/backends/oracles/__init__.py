"""The Oracle, behind one interface: ``oracle(spec, cache).run(task, items) -> list[OracleOutput]``,
then ``.usage()`` for what the run sent and cost (tasks and outputs: ``base``).

Backends (``ORACLES``, chosen by ``oracles.<name>.backend``):
- ``builtin``: the organism's symbolic oracle (``scripts.organism.oracle``), which sends nothing;
- ``openai``: any OpenAI-compatible endpoint -- an API or a vLLM server of an open model --
  through ``openai_client``, with its per-item cache (``cache``) and versioned prompt files
  (``prompts``).
"""

from scripts.infrastructure.registry import Registry

ORACLES = Registry("oracle backend")


@ORACLES.register("builtin")
def _builtin():
    from scripts.organism.oracle import BuiltinOracle

    return BuiltinOracle


@ORACLES.register("openai")
def _openai():
    from scripts.backends.oracles.openai_client import OpenAIOracle

    return OpenAIOracle


def oracle(spec: dict, cache: str | None = None):
    """The backend ``spec`` names; ``cache`` is the file that keeps its finished requests
    across runs (backends that send none ignore it)."""
    return ORACLES.load(spec["backend"], "oracles.<name>.backend")(spec, cache)
