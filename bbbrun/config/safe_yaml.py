"""A YAML reader that refuses hostile text cheaply: alias bombs, deep nesting, huge integers, duplicate keys.

PyYAML's safe loader runs no code, but a few lines can still expand into a
billion items (nested aliases), recurse past Python's stack (deep brackets),
stall on a 100,000-digit integer, or silently keep the second of two equal
keys. `load_yaml` refuses each with a `YamlRefused` naming the line.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DEPTH = 64  # nesting levels, counting those reached through aliases
MAX_NODES = 100_000  # values after every alias is expanded
MAX_INT_DIGITS = 30  # every integer bbbrun reads fits in 64 bits


class YamlRefused(ComposerError):
    """Parsable YAML that bbbrun will not read (a problem with a line mark, like PyYAML's own errors)."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that bounds nesting while composing and refuses duplicate keys and huge integers."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlRefused(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        check_duplicate_keys(node)
        return super().construct_mapping(node, deep=deep)


def check_duplicate_keys(node: MappingNode) -> None:
    """Refuse a mapping that writes the same key twice (merged `<<` keys may be overridden, as YAML allows)."""
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = (key_node.tag, key_node.value)
        if key in seen:
            text = key_node.value if len(key_node.value) <= 60 else key_node.value[:57] + "..."
            raise YamlRefused(None, None, f"duplicate key {text!r} (each key may appear once)",
                              key_node.start_mark)
        seen.add(key)


def construct_bounded_int(loader: BoundedLoader, node: ScalarNode) -> int:
    digits = sum(char.isdigit() for char in str(node.value))
    if digits > MAX_INT_DIGITS:
        raise ConstructorError(None, None, f"an integer of {digits} digits is too large (at most "
                               f"{MAX_INT_DIGITS} digits)", node.start_mark)
    return loader.construct_yaml_int(node)  # type: ignore[no-any-return]


BoundedLoader.add_constructor("tag:yaml.org,2002:int", construct_bounded_int)


def check_expansion(root: Node) -> None:
    """Refuse a node graph that, aliases expanded, is too big, too deep or contains itself."""
    seen: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels) once expanded

    def measure(node: Node, path: tuple[int, ...]) -> tuple[int, int]:
        key = id(node)
        if key in seen:
            return seen[key]
        if key in path:
            raise YamlRefused(None, None, "an alias refers to a value that contains it", node.start_mark)
        if len(path) > MAX_DEPTH:
            raise YamlRefused(None, None, f"nested more than {MAX_DEPTH} levels deep (through aliases)",
                              node.start_mark)
        values, levels = 1, 1
        for child in children_of(node):
            child_values, child_levels = measure(child, (*path, key))
            values, levels = values + child_values, max(levels, child_levels + 1)
        if values > MAX_NODES:
            raise YamlRefused(None, None, f"expands to more than {MAX_NODES} values (aliases repeated "
                              "inside aliases?)", node.start_mark)
        if levels > MAX_DEPTH:
            raise YamlRefused(None, None, f"nested more than {MAX_DEPTH} levels deep (through aliases)",
                              node.start_mark)
        seen[key] = (values, levels)
        return values, levels

    measure(root, ())


def children_of(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(text: str) -> Any:
    """One YAML document as plain data; raises yaml.YAMLError (YamlRefused for the refusals above)."""
    loader = BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        return loader.construct_document(node)
    except RecursionError:
        raise YamlRefused(None, None, "nested too deeply to read", None) from None
    finally:
        loader.dispose()
