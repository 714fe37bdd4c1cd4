"""A fast formatter that writes what the pinned black writes for the code dlspec emits.

`format_python` reproduces black 26.10.1 (line length 100, magic trailing commas, stable
style) for the Python subset dlspec's templates produce, and raises `Unsupported` for
anything else, so that the caller formats that source with black itself. The rules are black's
behaviour, read in its source as facts and checked against black byte for byte by the tests;
the code stating them is dlspec's own (NOTICE at the project's root says what was derived
before 2026-12-07)."""

from __future__ import annotations

import re
from typing import MutableMapping, Optional

from dlspec.codegen.pyformat import literals, segments
from dlspec.codegen.pyformat.blank_lines import (
    BlankLines,
    Block,
    LineInfo,
    info_from_line,
    joined,
)
from dlspec.codegen.pyformat.exploded import ItemFormatter, format_exploded
from dlspec.codegen.pyformat.fits import CALL_COMMAS, DEF_COMMAS, LINE_LENGTH
from dlspec.codegen.pyformat.isolated import format_statement
from dlspec.codegen.pyformat.linegen import generate_lines
from dlspec.codegen.pyformat.parser import parse
from dlspec.codegen.pyformat.scan import Item, scan, scan_segment
from dlspec.codegen.pyformat.simple import format_simple
from dlspec.codegen.pyformat.split import transform_line
from dlspec.codegen.pyformat.tokens import REFUSED, STRING_PATTERN, tokenize
from dlspec.codegen.pyformat.tree import NUMBER, Unsupported
from dlspec.codegen.pyformat.valid import check_statement

__all__ = ["ItemMemo", "Unsupported", "format_python"]

# One statement's formatted lines, and its blank-line facts when they are not read off the
# statement itself (LineInfo.facts), under everything its formatting depends on (item_key).
ItemMemo = MutableMapping[tuple, tuple]

_BOTH = frozenset((CALL_COMMAS, DEF_COMMAS))
_NONE: frozenset[str] = frozenset()
# a number holding an underscore (`1_000`, `0x_ff`, `1e1_0`, `.5_0`), or text that looks like one
_NUMBER_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9_.])\.?[0-9][0-9A-Za-z.]*_")
_FUTURE_ANNOTATIONS = re.compile(r"__future__[^\n]*annotations")
_DOCSTRING = re.compile(rf"(?P<string>{STRING_PATTERN})(?:[ ]*(?P<comment>#[^\n]*))?")
_BACKSLASH_NEWLINE = re.compile(r"\\\s*\n")


def format_python(source: str, py2: bool = False, memo: Optional[ItemMemo] = None) -> str:
    """black.format_str(source) with dlspec's pinned mode (py2: the cntk target's mode, which
    names the oldest target versions), or Unsupported when the source holds what this
    formatter does not reproduce. memo: statements formatted before (a statement's lines
    depend on its text, depth and the file's features alone, and a segment's on its text and
    those features), read and filled."""
    try:
        return _format_python(source, py2, memo)
    except RecursionError:
        # brackets nested deeper than the parser's recursion reaches (about 70): black's own
        # parser is not recursive
        raise Unsupported("brackets nested too deep") from None


def _format_python(source: str, py2: bool, memo: Optional[ItemMemo]) -> str:
    if memo is not None:
        try:
            return _format_by_segment(source, py2, memo)
        except Unsupported:
            pass  # decided below, on the whole file (black's for a refused character)
    refused = REFUSED.search(source)
    if refused:
        raise Unsupported(f"character {refused.group()!r}")
    try:
        return _format_by_statement(source, py2, memo)
    except Unsupported:
        return _format_tree(source, py2)


# ---- by statement: the fast path --------------------------------------------------------


def _format_by_statement(source: str, py2: bool, memo: Optional[ItemMemo] = None) -> str:
    memo = {} if memo is None else memo
    items, f_strings = scan(source)
    features = _file_features(source, py2, f_strings)
    placer = BlankLines()
    blocks: list[Block] = []
    for item in items:
        lines, info = _remembered(item, features, memo)
        blocks.append(placer.place(info, lines))
    if not blocks:
        raise Unsupported("an empty file")
    return joined(blocks)


def _file_features(
    source: str, py2: bool, f_strings: bool, underscored: Optional[bool] = None
) -> frozenset[str]:
    """The trailing commas black may add after `*args`/`**kwargs` (the target versions it
    infers), or Unsupported when something else in the file may change those versions
    (underscored: whether it holds a number with underscores; None: look in source)."""
    if underscored is None:
        underscored = _NUMBER_UNDERSCORE.search(source) is not None
    if not (py2 or f_strings) and underscored:
        raise Unsupported("a number with underscores may change the target versions")
    if _FUTURE_ANNOTATIONS.search(source):
        raise Unsupported("a __future__ import of annotations changes the target versions")
    return _NONE if py2 or not f_strings else _BOTH


def _format_by_segment(source: str, py2: bool, memo: ItemMemo) -> str:
    """_format_by_statement through the memo's segments (dlspec.codegen.pyformat.segments):
    a segment formatted before under the same features is one lookup; the others are scanned
    on their own and formatted statement by statement (through the memo), then remembered.
    What the file-wide checks look for is looked for in each new segment, and remembered."""
    stripped = source.lstrip()
    if REFUSED.search(source[: len(source) - len(stripped)]):
        raise Unsupported("a refused character")
    pieces = segments.split(stripped)
    keys = [
        (segments.SEGMENT, segments.digest(piece), index == 0) for index, piece in enumerate(pieces)
    ]
    known = [memo.get(key) for key in keys]
    scanned: list[Optional[list[Item]]] = []
    flags: list[tuple[bool, bool]] = []  # an f-string, a number with underscores
    for index, piece in enumerate(pieces):
        entry = known[index]
        if entry is not None:
            scanned.append(None)
            flags.append(tuple(entry[0]))
            continue
        if REFUSED.search(piece):
            raise Unsupported("a refused character")
        items, f_strings = scan_segment(piece, index == 0)
        scanned.append(items)
        flags.append((f_strings, _NUMBER_UNDERSCORE.search(piece) is not None))
    f_strings = any(flag[0] for flag in flags)
    features = _file_features(source, py2, f_strings, any(flag[1] for flag in flags))
    feature_key = tuple(sorted(features))
    placer = BlankLines()
    blocks: list[Block] = []
    for index, piece in enumerate(pieces):
        entry = known[index]
        by_features = dict(entry[1]) if entry else {}
        if feature_key in by_features:
            segments.replay(by_features[feature_key], placer, blocks)
            continue
        items = scanned[index] or scan_segment(piece, index == 0)[0]
        remembered = _format_segment(items, features, memo, placer, blocks, index == 0)
        if remembered is not None:
            by_features[feature_key] = remembered
            memo[keys[index]] = (flags[index], tuple(by_features.items()))
    if not blocks:
        raise Unsupported("an empty file")
    return joined(blocks)


def _format_segment(
    items: list[Item],
    features: frozenset[str],
    memo: ItemMemo,
    placer: BlankLines,
    blocks: list[Block],
    first: bool,
) -> Optional[tuple]:
    """Append a segment's blocks; its memo entry (segments.remembered), or None when its
    text cannot be remembered (segments.head_length)."""
    start = len(blocks)
    infos: list[LineInfo] = []
    for item in items:
        lines, info = _remembered(item, features, memo)
        blocks.append(placer.place(info, lines))
        infos.append(info)
    count = segments.head_length(infos, first)
    if count is None:
        return None
    head = [
        (tuple(block.lines), segments.placed(info))
        for block, info in zip(blocks[start : start + count], infos[:count], strict=True)
    ]
    return segments.remembered(head, blocks[start + count :], placer)


def item_key(item: Item, features: frozenset[str]) -> tuple:
    """Everything a statement's formatted lines depend on (not the blank lines before it)."""
    return (
        item.text,
        item.depth,
        item.first_word,
        item.header,
        item.multiline,
        item.docstring,
        tuple(sorted(features)),
    )


def _remembered(item: Item, features: frozenset[str], memo: ItemMemo) -> tuple[tuple, LineInfo]:
    """An item's lines and blank-line facts, from memo when it was formatted before."""
    if item.comment:
        info = LineInfo(item.depth, item.before, item.text)
        info.is_comment = True
        return ("    " * item.depth + item.text + "\n",), info
    key = item_key(item, features)
    known = memo.get(key)
    if known is None:
        check_statement(item.text, item.first_word, item.header)
        lines, facts = _format_item(item, features)
        known = memo[key] = (tuple(lines), facts)
    lines, facts = known
    if facts is None:
        return lines, _simple_info(item)
    return lines, LineInfo.from_facts(facts, item.depth, item.before)


def _format_item(item: Item, features: frozenset[str]) -> tuple[list[str], Optional[tuple]]:
    """A statement's lines, and its blank-line facts (None: the ones _simple_info reads)."""
    depth = item.depth
    if item.docstring:
        return _docstring(item)
    if not item.multiline:
        simple = format_simple(item.text, depth, item.first_word)
        if simple is not None:
            return [line + "\n" for line in simple], None
    elif item.first_word not in ("import", "from"):
        lines = format_exploded(item.text, depth, _item_fallback(features))
        if lines is not None:
            return lines, None
    lines, info = format_statement(item.text, depth, item.first_word, item.header, features)
    return lines, info.facts()


_ITEM_CONTEXT = {"[": ("x = [\n", "\n]"), "{": ("x = {\n", "\n}"), "(": ("x = f(\n", "\n)")}


def _item_fallback(features: frozenset[str]) -> ItemFormatter:
    """The full formatter on one item of an exploded collection: black formats each item of
    it on its own, so a collection of just that item gives the item's lines."""

    def format_item(text: str, depth: int, bracket: str) -> Optional[list[str]]:
        before, after = _ITEM_CONTEXT[bracket]
        lines, _ = format_statement(before + text + after, depth - 1, "x", False, features)
        indent = "    " * (depth - 1)
        if lines[0] != indent + before or lines[-1] != indent + after.lstrip("\n") + "\n":
            return None
        return lines[1:-1]

    return format_item


def _simple_info(item: Item) -> LineInfo:
    info = LineInfo(item.depth, item.before, item.first_word)
    word = item.first_word
    info.is_decorator = word == "@"
    info.is_def = word == "def"
    info.is_class = word == "class"
    info.is_import = word in ("import", "from")
    info.opens_block = item.header
    return info


def _docstring(item: Item) -> tuple[list[str], tuple]:
    match = _DOCSTRING.fullmatch(item.text)
    if match is None or _BACKSLASH_NEWLINE.search(item.text):
        raise Unsupported("a docstring the fast path does not handle")
    value = literals.normalize_unicode_escapes(match.group("string"))
    text = literals.docstring_value(value, item.depth, LINE_LENGTH)
    if text != value:  # black's second pass
        text = literals.docstring_value(text, item.depth, LINE_LENGTH)
    text = literals.normalize_string_quotes(literals.normalize_string_prefix(text))
    comment = match.group("comment")
    if comment:
        text += "  " + literals.make_comment(comment)
    info = LineInfo(item.depth, item.before, text)
    info.is_docstring = info.one_leaf = True
    return ["    " * item.depth + text + "\n"], info.facts()


# ---- the whole tree: slower, for what the scanner leaves -------------------------------


def _features(leaves: list, f_strings: bool, py2: bool) -> frozenset[str]:
    """The trailing commas black may add after `*args`/`**kwargs`, from the target versions
    it infers (a py2 script states its oldest targets, which allow neither)."""
    if py2:
        return _NONE
    newer = f_strings or any(leaf.type == NUMBER and "_" in leaf.value for leaf in leaves)
    return _BOTH if newer else _NONE


def _format_tree_once(source: str, py2: bool) -> str:
    from dlspec.codegen.pyformat.isolated import _check_features

    leaves, f_strings = tokenize(source.lstrip())
    features = _features(leaves, f_strings, py2)
    root = parse(leaves)
    _check_features(root, features)
    placer = BlankLines()
    blocks: list[Block] = []
    for line in generate_lines(root):
        info = info_from_line(line)
        if line.leaves:
            line.leaves[0].prefix = ""
        blocks.append(placer.place(info, (str(split) for split in transform_line(line, features))))
    if not blocks:
        raise Unsupported("an empty file")
    return joined(blocks)


def _format_tree(source: str, py2: bool) -> str:
    """The whole file through the syntax tree, twice when the first pass changed it."""
    once = _format_tree_once(source, py2)
    if once == source:
        return once
    return _format_tree_once(once, py2)
