"""Versioned prompt templates of the API oracle (``prompts/<task>.v<N>.md``).

A template is role sections opened by a line ``<!-- role: system -->`` (or ``user``,
``assistant``) whose ``{{field}}`` placeholders are filled from the item; text before the first
role line documents the template and is not sent. Its id ``<name>.v<N>`` is part of the cache
key, and ``fingerprint`` (a hash of what is sent, not of the preamble) is what the rules pass as
a param: editing a template's messages reruns the streams that send it, editing its preamble
reruns nothing.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from scripts.infrastructure.stage_log import StageError

_ROLE = re.compile(r"^<!-- role: (system|user|assistant) -->[ \t]*$", re.M)
_FIELD = re.compile(r"\{\{(\w+)\}\}")
_NAME = re.compile(r"^(?P<name>\w+)\.v(?P<version>\d+)\.md$")


class OracleError(StageError):
    """The run cannot go on (no key, key refused, unknown model or URL, a broken template)."""


@dataclass(frozen=True)
class Template:
    id: str  # "<name>.v<version>", part of the cache key
    messages: tuple[tuple[str, str], ...]  # (role, text with {{field}} placeholders)

    @property
    def fields(self) -> set[str]:
        return {f for _, text in self.messages for f in _FIELD.findall(text)}

    def render(self, item: dict) -> list[dict]:
        missing = self.fields - set(item)
        if missing:
            raise OracleError(f"prompt template {self.id} needs {sorted(missing)}, which item {item.get('id')!r} lacks")
        return [
            {"role": role, "content": _FIELD.sub(lambda m: str(item[m.group(1)]), text)} for role, text in self.messages
        ]


def load_template(path: str | Path) -> Template:
    path = Path(path)
    m = _NAME.match(path.name)
    if not m:
        raise OracleError(
            f"prompt template {path}: the file name must be <name>.v<version>.md (the version is part of the cache key)"
        )
    text = path.read_text(encoding="utf-8")
    parts = _ROLE.split(text)  # [preamble, role, body, role, body, ...]
    messages = tuple((role, body.strip("\n")) for role, body in zip(parts[1::2], parts[2::2]))
    if not messages or not any(r == "user" for r, _ in messages):
        raise OracleError(f"prompt template {path} has no '<!-- role: user -->' section")
    return Template(f"{m['name']}.v{m['version']}", messages)


def fingerprint(path: str | Path) -> str:
    """Hash of a template's id and messages: what a request sends, not the preamble."""
    t = load_template(path)
    return hashlib.sha256(json.dumps([t.id, t.messages]).encode()).hexdigest()[:16]
