"""Reading a recipe's YAML so that every problem can be pinned to a line.

`read_yaml` decodes the file (UTF-8, else the encoding it is detectably in) and returns both
the plain value and the composed node tree; `node_for` / `key_node` walk that tree along a
pydantic error location, and `duplicate_keys` finds the keys YAML would silently drop (a second
`train:` section replaces the first).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ollama_tune.errors import DataError, UsageError

MAX_RECIPE_BYTES = 1 << 20
_HINT = "pass the path of a recipe YAML, e.g. examples/customer-support/recipe.yaml"


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        from ollama_tune.data.encoding import decode_bytes

        decoded = decode_bytes(data)
        if not decoded.lossy:
            return decoded.text  # e.g. a recipe saved as Shift_JIS by a Windows editor
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(
            f"{path}:{line}: the recipe is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            hint="save the recipe as UTF-8 (in Notepad: Save as → Encoding: UTF-8)",
        ) from None


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    from ollama_tune.data.paths import read_data_file

    try:
        data = read_data_file(path, MAX_RECIPE_BYTES)
    except DataError as exc:
        raise UsageError(f"cannot read recipe: {exc.message}", hint=_HINT) from None
    text = _decode(path, data)
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = (
            exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        )
        raise UsageError(
            f"{path}:{line}: the recipe holds a character YAML does not allow (U+{char:04X})",
            hint="save the recipe as plain UTF-8 text; remove control characters",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(
            f"{path}{where}: the recipe is not valid YAML ({getattr(exc, 'problem', exc)})",
            hint="check indentation (spaces, not tabs) and quote values containing ':' or '#'",
        ) from None
    except (RecursionError, ValueError, TypeError) as exc:
        # Pathological input (nesting thousands deep, odd tags) that PyYAML itself trips on.
        raise UsageError(
            f"{path}: the recipe cannot be read as YAML ({type(exc).__name__})",
            hint="start from examples/customer-support/recipe.yaml",
        ) from None


def node_for(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """Walk the composed YAML tree along a pydantic error location; the deepest match wins."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == str(part)), None)
            if nxt is None:
                return node
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def key_node(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The node of the key itself (for unknown keys: point at the typo, not its value)."""
    parent = node_for(root, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for k, _v in parent.value:
            if k.value == str(loc[-1]):
                return k
    return parent


def duplicate_keys(root: yaml.Node | None) -> Iterator[tuple[str, int, int]]:
    """(dotted key, line of the first, line of the repeat) for each key a mapping repeats."""
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while stack:
        node, prefix = stack.pop()
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                name = f"{prefix}{k.value}" if isinstance(k, yaml.ScalarNode) else prefix + "?"
                line = k.start_mark.line + 1
                if isinstance(k, yaml.ScalarNode) and k.value != "<<":
                    if name in first:
                        yield name, first[name], line
                    first.setdefault(name, line)
                stack.append((v, f"{name}."))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, prefix) for item in node.value)
