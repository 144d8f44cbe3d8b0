"""YAML reading with aliases bounded.

``yaml.safe_load`` runs no code, but anchors and aliases let a 500-byte file describe a
document of a billion nodes ("billion laughs"): the loader shares the aliased objects, so
parsing is quick, and whatever walks the result afterwards (validation, a surrogate check,
JSON encoding) never finishes. A recursive alias (``&a [*a]``) makes a walk loop forever.
Rule files and routing configs are read here: the composed node graph's expanded size is
counted once, memoised per node (linear in the file), and a file that expands beyond
:data:`MAX_NODES` or refers to itself is refused before anything is built from it.
"""

from __future__ import annotations

from typing import Any

import yaml

#: expanded nodes a document may hold: a rule file of 5,000 rules of 40 fields is ~400k
MAX_NODES = 1_000_000


class YamlTooLarge(yaml.YAMLError):
    """The document, with its aliases expanded, is too large or refers to itself."""


def safe_load(text: str, max_nodes: int = MAX_NODES) -> Any:
    """``yaml.safe_load`` that refuses alias bombs and recursive aliases."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, max_nodes)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node, max_nodes: int) -> None:
    """Expanded size of every node, children first (iterative: no recursion limit)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > max_nodes:
                raise YamlTooLarge(f"the document expands to more than {max_nodes:,} nodes "
                                   "through its aliases (&anchor / *alias): refused")
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            raise YamlTooLarge("an alias refers to a node that contains it (a recursive "
                               "document): refused")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)
