"""Named implementations of one interface, each imported only when a config chooses it.

A registry maps a name (a config value such as ``transformers`` or ``builtin``) to a *loader*: a
small function that imports the implementation and returns it. Nothing is imported until
``load(name)`` runs, so choosing the built-in reward never imports torch, and the provenance
hash of a stage (``scripts.infrastructure.provenance``) takes in the code of the chosen
implementation only: editing the vLLM backend reruns nothing in a run that never uses vLLM.

Loaders are the only functions in the project that import project modules inside a function
body (a test checks it)."""

from collections.abc import Callable

from scripts.infrastructure.stage_log import StageError


class UnknownName(StageError, ValueError):
    """A config names an implementation that is not registered."""


class Registry:
    def __init__(self, what: str):
        self.what = what  # e.g. "generation backend", for messages
        self.loaders: dict[str, Callable[[], object]] = {}

    def register(self, name: str):
        def add(loader: Callable[[], object]):
            self.loaders[name] = loader
            return loader

        return add

    def names(self) -> list[str]:
        return sorted(self.loaders)

    def loader(self, name: str, key: str | None = None) -> Callable[[], object]:
        if name not in self.loaders:
            where = f"{key}: " if key else ""
            raise UnknownName(f"{where}unknown {self.what} {name!r}; available: {self.names()}")
        return self.loaders[name]

    def load(self, name: str, key: str | None = None):
        """The implementation registered as ``name`` (``key``: the config key that chose it)."""
        return self.loader(name, key)()
