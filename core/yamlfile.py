"""Read user YAML files safely, so that every error names the file, the line and the key.

``load_yaml`` is the one YAML loader for input files. It is PyYAML's safe loader (the libyaml
one when installed) with limits, because a plain ``safe_load`` accepts things that hurt later:

* more than ``MAX_DOCUMENTS`` document (``---``) — the rest would be silently ignored or merged;
* nesting deeper than ``MAX_DEPTH`` levels (composition recurses; a deep file could crash it);
* more than ``MAX_ALIASES`` aliases, aliases that would add more than ``MAX_ALIAS_NODES`` nodes
  once expanded (the "billion laughs"), or an alias inside the structure it names (a cycle);
* text larger than ``infile.MAX_YAML_BYTES``;
* a key repeated in one mapping (YAML says keys are unique; PyYAML lets the last one win),
  refused naming both lines. Merge keys (``<<: *base``) are allowed.

The file is parsed once for its events (cheap, iterative: the limits are checked there before
anything recursive runs), then composed once; the value is constructed from that same node tree,
which is also kept so that validation errors can name their line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core import infile
from core.errors import InvalidInput
from core.messages import zh_error

M = TypeVar("M", bound=BaseModel)

MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_ALIAS_NODES = 10_000
MAX_DOCUMENTS = 1
MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # type: ignore[assignment]


def _refuse(source: str, line: int | None, message: str) -> InvalidInput:
    at = f" 第 {line} 行" if line else ""
    return InvalidInput(f"{source}{at}：{message}", line=line)


def _check_events(text: str, source: str, loader_cls: type) -> int:
    """Depth, alias and document limits, checked on the event stream before composing; returns
    the number of aliases."""
    depth = aliases = documents = 0
    loader = loader_cls(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _refuse(source, line, f"嵌套超过 {MAX_DEPTH} 层，请减少层级")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _refuse(source, line, f"别名（*引用）超过 {MAX_ALIASES} 个，请直接写出内容")
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > MAX_DOCUMENTS:
                    raise _refuse(source, line, "文件中有多个 YAML 文档（---），只能有一个")
    finally:
        loader.dispose()
    return aliases


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _key_text(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(loader: Any, node: yaml.MappingNode, source: str) -> None:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE_TAG:
            continue
        key = key_node.value if key_node.tag == STR_TAG else loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:
            continue
        if first is not None:
            raise _refuse(source, line, f"键「{_key_text(key_node.value)}」重复（第 {first} 行已出现），"
                          "同一映射中每个键只能出现一次")
        seen[key] = line


def _check_keys_only(loader: Any, root: yaml.Node, source: str) -> None:
    """Duplicate keys in a tree without aliases (so without sharing or cycles), iteratively."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            _check_keys(loader, node, source)
        stack.extend(_children(node))


def _check_tree(loader: Any, root: yaml.Node, source: str) -> None:
    """Duplicate keys, alias cycles and the expanded size, walked without recursion."""
    size: dict[int, int] = {}
    started: set[int] = set()
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        if done:
            size[nid] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if nid in size:
            continue
        if nid in started:
            raise _refuse(source, node.start_mark.line + 1, "别名引用了包含它自身的结构（循环引用）")
        started.add(nid)
        distinct += 1
        if isinstance(node, yaml.MappingNode):
            _check_keys(loader, node, source)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(_children(node)))
    if size[id(root)] - distinct > MAX_ALIAS_NODES:
        raise _refuse(source, None, f"别名展开后超过 {MAX_ALIAS_NODES} 个额外节点（疑似「十亿笑声」攻击），"
                      "请直接写出内容")


def load_yaml(text: str, source: str,
              loader_cls: type | None = None) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document within the limits; returns (value, node tree) or raises."""
    loader_cls = loader_cls or SafeLoader
    if len(text) > infile.MAX_YAML_BYTES or len(text.encode("utf-8")) > infile.MAX_YAML_BYTES:
        raise _refuse(source, None, f"内容超过上限 {infile.MAX_YAML_BYTES // infile.MB} MB")
    try:
        aliases = _check_events(text, source, loader_cls)
        loader = loader_cls(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return None, None
            (_check_tree if aliases else _check_keys_only)(loader, root, source)
            return loader.construct_document(root), root
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        # libyaml puts an end-of-text problem one line past a last line without a newline
        line = min(mark.line, text.count("\n")) + 1 if mark else None
        where = f"第 {line} 行" if line else ""
        raise InvalidInput(f"{source} {where} 不是合法的 YAML：{exc}", line=line) from exc


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
    raw, root = load_yaml(text, source)
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
    """A user YAML file as text: a regular file within the size limit, UTF-8 (BOM allowed);
    GBK/GB18030 is refused with the fix, never guessed."""
    return infile.read_text(path, what, limit=infile.MAX_YAML_BYTES)


def read_yaml(path: Path, what: str) -> tuple[Any, yaml.Node | None]:
    """Read and parse a user YAML (or JSON) file of any top-level shape; errors name the file."""
    return load_yaml(read_text(path, what), Path(path).name)


def parse_model(text: str, source: str, model: type[M]) -> tuple[M, yaml.Node | None]:
    """Parse YAML into ``model``; every problem names the file, line and key."""
    raw, root = parse_yaml(text, source)
    try:
        return model.model_validate(raw), root
    except ValidationError as exc:
        problems = validation_problems(exc, root, source)
        raise InvalidInput("；".join(problems), errors=problems) from exc
