"""The full formatter on one statement: parsed alone (in a minimal context), split, twice."""

from __future__ import annotations

import re

from dlspec.codegen.pyformat import literals
from dlspec.codegen.pyformat import tree as t
from dlspec.codegen.pyformat.blank_lines import LineInfo, info_from_line
from dlspec.codegen.pyformat.exploded import format_exploded
from dlspec.codegen.pyformat.linegen import generate_lines
from dlspec.codegen.pyformat.parser import parse
from dlspec.codegen.pyformat.split import transform_line
from dlspec.codegen.pyformat.tokens import KEYWORDS, TOKEN, tokenize
from dlspec.codegen.pyformat.tree import Node, Unsupported

# Statements that need the statement before them to parse: (text before, index of the line)
_CONTEXTS = {
    "elif": ("if x:\n    pass\n", 2),
    "else": ("if x:\n    pass\n", 2),
    "except": ("try:\n    pass\n", 2),
    "finally": ("try:\n    pass\n", 2),
}
_HEADERS = frozenset("if for while with try def class".split())
_SHAPES: dict[tuple, tuple[list[list], LineInfo]] = {}
_MEMO_LIMIT = 20000


def _synthetic(text: str, first_word: str, header: bool) -> tuple[str, int, int]:
    """Source holding the statement where it parses as in its file: (source, index of its
    logical line among the generated lines, how many lines to expect)."""
    if first_word in _CONTEXTS:
        before, index = _CONTEXTS[first_word]
        return f"{before}{text}\n    pass\n", index, 4
    if header:
        return f"{text}\n    pass\n", 0, 2
    if first_word == "@":
        return f"{text}\ndef f():\n    pass\n", 0, 3
    if text[:1] in "\"'" or text[:2].lower() in ('r"', "r'", 'b"', "b'", 'u"', "u'", 'f"', "f'"):
        return f"pass\n{text}\n", 1, 2  # a string first in a file would be its docstring
    return f"{text}\n", 0, 1


def _check_features(root: Node, features: frozenset[str]) -> None:
    """Refuse what would change the target versions black infers for the file."""
    for node in root.pre_order():
        kind = node.type
        if kind in (t.typedargslist, t.arglist) and node.children[-1].type == t.COMMA:
            if not features and _has_star(node):
                raise Unsupported("a trailing comma after *args")
        elif kind in (t.return_stmt, t.yield_expr) and len(node.children) >= 2:
            value = node.children[1]
            if value.type == t.testlist_star_expr and any(
                c.type == t.star_expr for c in value.children
            ):
                raise Unsupported("unpacking in return or yield")
        elif kind == t.decorator:
            if not _simple_decorator(node.children[1]):
                raise Unsupported("a decorator black calls relaxed")
        elif kind in (t.listmaker, t.testlist_gexp, t.dictsetmaker):
            children = node.children
            if children[0].type in (t.star_expr, t.DOUBLESTAR) and any(
                c.type in (t.comp_for, t.old_comp_for) for c in children
            ):
                raise Unsupported("unpacking in a comprehension")
        elif kind == t.NUMBER and "_" in node.value and not features:
            raise Unsupported("a number with underscores")
        elif kind == t.import_from and node.children[1].type == t.NAME:
            if node.children[1].value == "__future__" and "annotations" in str(node):
                raise Unsupported("a __future__ import of annotations")


def _has_star(node: Node) -> bool:
    for child in node.children:
        if child.type in (t.STAR, t.DOUBLESTAR):
            return True
        if child.type == t.argument and any(
            c.type in (t.STAR, t.DOUBLESTAR) for c in child.children
        ):
            return True
    return False


def _simple_decorator(node: t.LN) -> bool:
    """black's is_simple_decorator_expression: a dotted name, maybe called."""
    if node.type == t.NAME:
        return True
    if node.type != t.power:
        return False
    children = node.children
    if children[0].type != t.NAME:
        return False
    middle, last = children[1:-1], children[-1]
    for trailer in middle:
        if not (
            trailer.type == t.trailer
            and len(trailer.children) == 2
            and trailer.children[0].type == t.DOT
        ):
            return False
    return last.type == t.trailer and (
        (len(last.children) == 2 and last.children[0].type in (t.DOT, t.LPAR))
        or (len(last.children) == 3 and last.children[0].type == t.LPAR)
    )


def _format_once(
    text: str, depth: int, first_word: str, header: bool, features: frozenset[str]
) -> tuple[list[list], LineInfo, str]:
    """One black pass over the statement: (a template per output line, the blank-line facts,
    the output text)."""
    source, index, expected = _synthetic(text, first_word, header)
    leaves, f_strings = tokenize(source)
    if f_strings and not features:
        raise Unsupported("an f-string the scanner did not see")
    root = parse(leaves)
    _check_features(root, features)
    lines = generate_lines(root)
    if len(lines) != expected:
        raise Unsupported("a statement that is more than one logical line")
    line = lines[index]
    line.depth += depth
    info = info_from_line(line)
    first = line.leaves[0]
    first.prefix = ""
    offset = first.origin if first.origin >= 0 else _first_origin(line)
    templates = [split.template(offset) for split in transform_line(line, features)]
    values = [leaf.value for leaf in leaves if leaf.origin >= offset]
    return templates, info, "".join(_fill(template, values) for template in templates)


def _first_origin(line: t.Node | object) -> int:
    for leaf in line.leaves:
        if leaf.origin >= 0:
            return leaf.origin
    return 0


def _fill(template: list, values: list[str]) -> str:
    return "".join(piece if isinstance(piece, str) else values[piece] for piece in template)


_SPACE = re.compile(r"\s+")


def _no_fallback(text: str, depth: int, bracket: str) -> None:
    return None


def _second_pass_may_differ(text: str, rendered: str) -> bool:
    """Would black's second pass, given this statement's first-pass output, decide anything
    differently? Not when the output holds the same tokens (only the whitespace between them
    changed: no comma added, no parenthesis shown or hidden, no string or number rewritten)
    and nothing that reads line breaks (comments; an assignment target in brackets)."""
    if "#" in text or text[:1] in "([{":
        return True
    return _SPACE.sub("", text) != _SPACE.sub("", rendered)


def shape_key(text: str) -> tuple[tuple, list[str]]:
    """What black's decisions about a statement depend on (token kinds, keyword and operator
    texts, lengths, comments, line breaks), and the texts of its names, numbers and strings."""
    key: list = []
    values: list[str] = []
    pos, size, newline = 0, len(text), False
    while pos < size:
        match = TOKEN.match(text, pos)
        if match is None:
            raise Unsupported("cannot tokenize")
        group, value = match.lastgroup, match.group()
        pos = match.end()
        if group == "space":
            continue
        if group == "newline":
            newline = True
            continue
        if group == "name":
            if value in KEYWORDS:
                key.append(value)
            else:
                key.append(len(value))
            values.append(value)
        elif group == "number":
            value = literals.normalize_number(value)
            key.append(("number", len(value), value[:2], "j" in value))
            values.append(value)
        elif group == "string":
            value = _normalize_string(value)
            key.append(("string", len(value), literals.string_prefix(value).lower()))
            values.append(value)
        else:  # an operator or a comment, as it is
            key.append(value)
        if newline:
            key.append("\n")
            newline = False
    return tuple(key), values


def _normalize_string(value: str) -> str:
    """black's normalisation of a (non-docstring) string, applied twice as its two passes."""
    return literals.normalize_string(literals.normalize_string(value))


def format_statement(
    text: str, depth: int, first_word: str, header: bool, features: frozenset[str]
) -> tuple[list[str], LineInfo]:
    """black's lines for one statement (first line unindented in `text`) at `depth`, and its
    blank-line facts; black's second pass is applied when the first changed the text.

    The result is remembered by the statement's shape (shape_key): black decides the same
    way for every statement of one shape, so a later one only has its texts filled in."""
    shape, values = shape_key(text)
    key = (shape, depth, first_word, header, features)
    cached = _SHAPES.get(key)
    if cached is None:
        templates, info, rendered = _format_once(text, depth, first_word, header, features)
        if _second_pass_may_differ(text, rendered):
            again = rendered[4 * depth :].rstrip("\n")
            if format_exploded(again, depth, _no_fallback) != rendered.splitlines(keepends=True):
                templates, _, _ = _format_once(again, depth, first_word, header, features)
        if len(_SHAPES) > _MEMO_LIMIT:
            _SHAPES.clear()
        cached = _SHAPES[key] = (templates, info)
    templates, info = cached
    return [_fill(template, values) for template in templates], info
