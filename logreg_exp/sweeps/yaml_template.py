"""``OmegaConf.to_yaml``'s text for many configs that differ only in a few leaf values: the jobs
of a group, whose ``.hydra/`` files differ in their overrides, number and dir.

The text is dumped once, by OmegaConf's own dumper, with a marker in place of each such value;
each job's text is that text with its own values in the markers' places, each dumped by the
same dumper as a mapping's value. PyYAML writes a scalar the same way wherever it stands in
block style, except that it folds a line longer than its width (80); so a value whose text is
more than one line, or whose line would pass that width, is not filled in: the caller dumps
that job's config whole.
"""

from __future__ import annotations

import enum
import functools
import secrets
from collections.abc import Sequence
from typing import Any

from logreg_exp.hydra_compat import yaml_dump

KeyPath = tuple[str | int, ...]  # the keys (and list indices) from the root to a leaf

WIDTH = 80  # PyYAML's default best_width: a longer line may be folded


def dump(container: Any) -> str:
    """What ``OmegaConf.to_yaml`` writes for the plain container ``container``."""
    return yaml_dump(container)


def scalar_text(value: Any) -> str:
    """``value`` as ``dump`` writes it as a mapping's value (enums by name, as
    ``to_container(enum_to_str=True)`` gives them)."""
    if isinstance(value, enum.Enum):
        value = value.name
    if isinstance(value, int | float | str | bool | None):  # the same value, the same text
        return _scalar_text(type(value), repr(value), value)
    return dump({"k": value})[len("k: ") : -1]


@functools.lru_cache(maxsize=4096)
def _scalar_text(kind: type, spelt: str, value: Any) -> str:
    return dump({"k": value})[len("k: ") : -1]


class YamlTemplate:
    """The text of ``container`` with a hole at each of ``paths`` (leaves), to be filled with
    other values. None where a hole cannot be made (a path that is not a scalar leaf)."""

    def __init__(self, container: Any, paths: Sequence[KeyPath]) -> None:
        token = secrets.token_hex(8)
        markers = [f"slot{n}x{token}" for n in range(len(paths))]
        marked = _with_values(container, dict(zip(paths, markers, strict=True)))
        text = dump(marked)
        self.parts: list[str] = []
        self.columns: list[int] = []  # where each hole starts in its line
        self.order: list[int] = []  # the path of each hole, in the text's order
        self.valid = all(text.count(m) == 1 for m in markers)
        if not self.valid:
            return
        self.order = sorted(range(len(markers)), key=lambda n: text.index(markers[n]))
        for n in self.order:
            before, text = text.split(markers[n])
            if not text.startswith("\n"):  # a value must end its line
                self.valid = False
                return
            self.parts.append(before)
            line_start = before.rfind("\n") + 1
            self.columns.append(len(before) - line_start)
        self.parts.append(text)

    def fill(self, values: Sequence[Any]) -> str | None:
        """The text with ``values`` (one a path) in the holes; None where PyYAML would write
        one of them otherwise (over more than one line, or folded at the width)."""
        if not self.valid:
            return None
        pieces = [self.parts[0]]
        in_order = [values[n] for n in self.order]
        for value, column, after in zip(in_order, self.columns, self.parts[1:], strict=True):
            text = scalar_text(value)
            if "\n" in text or column + len(text) > WIDTH:
                return None
            pieces += [text, after]
        return "".join(pieces)


def _with_values(node: Any, values: dict[KeyPath, Any], path: KeyPath = ()) -> Any:
    """A copy of the plain container ``node`` with the leaves at ``values``' paths replaced."""
    if path in values:
        if isinstance(node, dict | list):
            return node  # not a leaf: the marker is missing from the text, and it is refused
        return values[path]
    if isinstance(node, dict):
        return {k: _with_values(v, values, (*path, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_values(v, values, (*path, i)) for i, v in enumerate(node)]
    return node


def dumps(containers: Sequence[Any], paths: Sequence[KeyPath]) -> list[str]:
    """``dump`` of each of ``containers``, plain containers that differ only in their leaves at
    ``paths``, made from one template; each dumped whole where the template cannot say it (a
    container of another shape, a value over more than one line)."""
    if not containers:
        return []
    template = YamlTemplate(containers[0], paths)
    shape = _shape(containers[0])
    texts = []
    for container in containers:
        text = None
        if _shape(container) == shape:
            text = template.fill([_at(container, path) for path in paths])
        texts.append(text if text is not None else dump(container))
    return texts


def _shape(node: Any) -> Any:
    """The keys (and list lengths) of a plain container, nested, without the leaves."""
    if isinstance(node, dict):
        return tuple((k, _shape(v)) for k, v in node.items())
    if isinstance(node, list):
        return ("[]", tuple(_shape(v) for v in node))
    return None


def _at(node: Any, path: KeyPath) -> Any:
    for step in path:
        node = node[step]
    return node
