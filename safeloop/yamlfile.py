"""Read user YAML files so that every error names the file, the line and the key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from states.errors import InvalidInput
from states.messages import zh_error

M = TypeVar("M", bound=BaseModel)


def line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """Follow a location (keys and list indexes) through the YAML node tree to a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                key_node = next((k for k, _ in node.value if k.value == part), None)
                return key_node.start_mark.line + 1 if key_node else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def parse_yaml(text: str, source: str) -> tuple[dict[str, Any], yaml.Node | None]:
    """Parse a YAML mapping, keeping the node tree for line numbers; bad YAML names its line."""
    try:
        root = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第 {mark.line + 1} 行" if mark else ""
        raise InvalidInput(f"{source} {where} 不是合法的 YAML：{exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidInput(f"{source} 顶层必须是键值映射")
    return raw, root


def where(source: str, root: yaml.Node | None, loc: Sequence[Any]) -> str:
    key = ".".join(str(p) for p in loc)
    return f"{source} 第 {line_of(root, loc)} 行 {key}"


def validation_problems(exc: ValidationError, root: yaml.Node | None, source: str) -> list[str]:
    """One zh-CN line per pydantic error: file, line, key path and message."""
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        problems.append(f"{where(source, root, loc)}：{zh_error(dict(err))}")
    return problems


def read_text(path: Path, what: str) -> str:
    """A user file as UTF-8 text; an unreadable one is bad input naming the file."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"无法读取{what} {path}：{exc.strerror}") from exc


def parse_model(text: str, source: str, model: type[M]) -> tuple[M, yaml.Node | None]:
    """Parse YAML into ``model``; every problem names the file, line and key."""
    raw, root = parse_yaml(text, source)
    try:
        return model.model_validate(raw), root
    except ValidationError as exc:
        problems = validation_problems(exc, root, source)
        raise InvalidInput("；".join(problems), errors=problems) from exc
