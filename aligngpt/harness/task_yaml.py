"""Reading one ``task.yaml`` strictly: every key known, every value checked, errors at ``file:line``.

A typo in a benchmark spec must not silently fall back to a default (a misspelt
``max_new_tokens`` would change every answer), so unknown keys and bad values are refused with
the file and line of the offending node. The loader keeps the line of every mapping key.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import yaml

from ..errors import ConfigError


class Node(dict):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings are :class:`Node` objects carrying line numbers."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Node:
    loader.flatten_mapping(node)
    out = Node()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise ConfigError(f"{loader.name}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str, where: str) -> Node:
    """The top-level mapping of a spec file (``where`` names it in errors)."""
    loader = _LineLoader(text)
    loader.name = where
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    finally:
        loader.dispose()
    if not isinstance(data, Node):
        raise ConfigError(f"{where}:1: a task spec is a mapping of keys to values")
    return data


class Reader:
    """Typed access to one mapping of a spec; every refusal names ``file:line``."""

    def __init__(self, node: Node, where: str, prefix: str = ""):
        self.node, self.where, self.prefix = node, where, prefix

    def fail(self, key: str | None, message: str) -> ConfigError:
        line = self.node.line_of(key) if key is not None else self.node.line
        name = f"{self.prefix}{key}" if key is not None else self.prefix.rstrip(".") or "spec"
        return ConfigError(f"{self.where}:{line}: {name}: {message}")

    def only(self, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in self.node:
            if key not in allowed:
                raise self.fail(key, f"unknown key (known: {', '.join(allowed)})")

    def has(self, key: str) -> bool:
        return key in self.node and self.node[key] is not None

    def get(self, key: str, kind: type | tuple, default: Any = ..., check: Callable[[Any], str | None] | None = None):
        if not self.has(key):
            if default is ...:
                raise self.fail(None, f"missing required key {self.prefix}{key!r}")
            return default
        value = self.node[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.fail(key, f"expected {'/'.join(k.__name__ for k in kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise self.fail(key, f"expected {'/'.join(k.__name__ for k in kinds)}, got {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                raise self.fail(key, problem)
        return value

    def choice(self, key: str, options: Iterable[str], default: Any = ...) -> str:
        options = tuple(options)
        return self.get(key, str, default, lambda v: None if v in options else
                        f"must be one of {', '.join(options)}, got {v!r}")

    def sub(self, key: str) -> "Reader | None":
        if not self.has(key):
            return None
        value = self.node[key]
        if not isinstance(value, Node):
            raise self.fail(key, "expected a mapping")
        return Reader(value, self.where, f"{self.prefix}{key}.")


def positive_int(value: int) -> str | None:
    return None if value > 0 else f"must be a positive integer, got {value}"


def reference(value: str) -> str | None:
    """``module:attr`` (absolute, or relative to the task folder with leading dots)."""
    module, sep, attr = value.partition(":")
    if not sep or not module.strip(".") or not attr.isidentifier():
        return f"expected 'module:Name' (e.g. '.evaluator:MyEvaluator'), got {value!r}"
    return None
