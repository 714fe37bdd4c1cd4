"""Parse spec text with lark into the syntax tree; lark's errors become SyntaxProblems here only."""

from __future__ import annotations

import base64
import hashlib
import pickle
import re
import sys
from dataclasses import replace
from functools import lru_cache
from typing import Any, Optional, Union

from dlspec.errors import BadValue, Pos, SpecError, SyntaxProblem, source_lines
from dlspec.frontend import ast
from dlspec.limits import MAX_NESTING, MAX_NUMBER_DIGITS
from dlspec.resources import grammar_text

# lark imports interegular (half of lark's import time) only to check a grammar's terminals for
# collisions while it builds a parser; dlspec loads stored tables, so the import is put off:
# lark's own import of it fails (a None in sys.modules, removed at once), and its lexer is then
# given a stand-in that imports interegular when lark first uses it (building a grammar).
_SKIP_INTEREGULAR = "interegular" not in sys.modules
if _SKIP_INTEREGULAR:
    sys.modules["interegular"] = None  # type: ignore[assignment]
try:
    import lark  # noqa: E402
    from lark import Lark, Token, Transformer, Tree, v_args  # noqa: E402
    from lark.exceptions import (  # noqa: E402
        UnexpectedCharacters,
        UnexpectedEOF,
        UnexpectedInput,
        UnexpectedToken,
        VisitError,
    )
finally:
    if _SKIP_INTEREGULAR and "interegular" in sys.modules and sys.modules["interegular"] is None:
        del sys.modules["interegular"]


class _OnFirstUse:
    """A module imported when an attribute of it is first read."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._name), attribute)


def _defer_interegular() -> None:
    """Give lark's lexer interegular back (when installed), imported on first use."""
    import importlib.util

    import lark.lexer

    if not lark.lexer.has_interegular and importlib.util.find_spec("interegular") is not None:
        lark.lexer.interegular = _OnFirstUse("interegular")  # type: ignore[attr-defined]
        lark.lexer.has_interegular = True


if _SKIP_INTEREGULAR:
    _defer_interegular()

_TOKEN_WORDS = {
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "__ANON_0": "'->'",
    "STAR": "'*'",
    "NAME": "a name",
    "INT": "an integer",
    "SIGNED_NUMBER": "a number",
    "ESCAPED_STRING": "a string",
    "$END": "end of file",
}


PARSER_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "propagate_positions": True,
    "maybe_placeholders": True,
}


def tables_key(grammar: str) -> str:
    """What the parser lark builds depends on: the grammar, lark's version, the options."""
    digest = hashlib.sha256()
    for part in (grammar, lark.__version__, repr(sorted(PARSER_OPTIONS.items()))):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def _stored_parser(grammar: str) -> Optional[Lark]:
    """The parser stored in dlspec.frontend.lalr_tables (tools/build_parser_tables.py) when it
    was built from this grammar by this lark: loading it takes milliseconds, building it a
    fifth of a second."""
    try:
        from dlspec.frontend import lalr_tables

        if lalr_tables.KEY != tables_key(grammar):
            return None
        tables = pickle.loads(base64.b64decode(lalr_tables.TABLES))
        return Lark._load_from_dict(tables["data"], tables["memo"])
    except Exception:  # noqa: BLE001 - missing or unreadable tables: build the parser
        return None


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = grammar_text()
    return _stored_parser(grammar) or Lark(grammar, **PARSER_OPTIONS)


def _pos_of(item: Union[Token, Tree, Any]) -> Pos:
    if isinstance(item, Token):
        return Pos(item.line or 0, item.column or 0, (item.column or 0) + len(item))
    meta = item.meta
    if getattr(meta, "empty", True):
        return Pos()
    end = meta.end_column if meta.end_line == meta.line else meta.column + 1
    return Pos(meta.line, meta.column, end)


class _TooLarge(Exception):
    """An integer literal with more digits than any limit allows (raised from the transformer)."""

    def __init__(self, pos: Pos, digits: int) -> None:
        super().__init__(pos)
        self.pos = pos
        self.digits = digits


def _number(token: Token) -> ast.Num:
    """A number literal; an integer never passes through int() with more digits than any limit
    allows (Python refuses long ones, and float() of a huge int overflows)."""
    text = str(token)
    is_int = all(ch.isdigit() or ch in "+-" for ch in text)
    if not is_int:
        return ast.Num(float(text), text, _pos_of(token))
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > MAX_NUMBER_DIGITS:
        raise _TooLarge(_pos_of(token), len(digits))
    sign = -1 if text.startswith("-") else 1
    return ast.Num(sign * int(digits or "0"), text, _pos_of(token))


_ESCAPES = {"n": "\n", "t": "\t"}
_NESTING_RULES = ("list", "call_value", "arglist", "params")


def _unescape(body: str) -> str:
    """The text of a string literal: `\\n`, `\\t` and `\\<char>` (as `\\"`) decoded."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


@v_args(meta=True)
class _ToAst(Transformer):
    """Turn lark's parse tree into dlspec.frontend.ast nodes (one method per grammar rule)."""

    def start(self, meta: Any, items: list) -> tuple:
        return tuple(items)

    def model(self, meta: Any, items: list) -> ast.ModelDecl:
        name, *body = items
        inputs = tuple(i for i in body if isinstance(i, ast.InputDecl))
        layers = tuple(i for i in body if isinstance(i, ast.LayerStmt))
        outputs = tuple(i for i in body if isinstance(i, ast.OutputDecl))
        return ast.ModelDecl(str(name), inputs, layers, _pos_of(name), tuple(body), outputs)

    def input_decl(self, meta: Any, items: list) -> ast.InputDecl:
        name, dtype, dims = items
        return ast.InputDecl(str(name), ast.Name(str(dtype), _pos_of(dtype)), dims, _pos_of(name))

    def dims(self, meta: Any, items: list) -> tuple[ast.Num, ...]:
        return tuple(_number(t) for t in items)

    def layer_stmt(self, meta: Any, items: list) -> ast.LayerStmt:
        sources, *links = items
        calls = tuple(call for _, call in links)
        labels = tuple(label for label, _ in links)
        first = links[0][0] or links[0][1]
        start = sources[0].pos if sources else first.pos
        return ast.LayerStmt(labels[0], calls, start, tuple(sources or ()), labels)

    def sources(self, meta: Any, items: list) -> tuple[ast.Name, ...]:
        return tuple(items[0])

    def tensor_list(self, meta: Any, items: list) -> tuple[ast.Name, ...]:
        return tuple(ast.Name(str(t), _pos_of(t)) for t in items)

    def link(self, meta: Any, items: list) -> tuple[Optional[ast.Name], ast.Call]:
        label, call, repeat = items
        return label, (call if repeat is None else replace(call, repeat=repeat))

    def repeat(self, meta: Any, items: list) -> ast.Num:
        return _number(items[0])

    def block(self, meta: Any, items: list) -> ast.BlockDecl:
        name, params, *body = items
        return ast.BlockDecl(str(name), params or (), tuple(body), _pos_of(name))

    def params(self, meta: Any, items: list) -> tuple[ast.Param, ...]:
        return tuple(item for item in items if item is not None)

    def param(self, meta: Any, items: list) -> ast.Param:
        name, default = items
        return ast.Param(str(name), default, _pos_of(name))

    def block_input(self, meta: Any, items: list) -> ast.BlockInput:
        names = tuple(ast.Name(str(t), _pos_of(t)) for t in items)
        return ast.BlockInput(names, names[0].pos)

    def output_decl(self, meta: Any, items: list) -> ast.OutputDecl:
        names = tuple(ast.Name(str(t), _pos_of(t)) for t in items)
        return ast.OutputDecl(names, names[0].pos)

    def label(self, meta: Any, items: list) -> ast.Name:
        return ast.Name(str(items[0]), _pos_of(items[0]))

    def call(self, meta: Any, items: list) -> ast.Call:
        name, args = items
        return ast.Call(str(name), args or (), _pos_of(name))

    def arglist(self, meta: Any, items: list) -> tuple[ast.Arg, ...]:
        args = []
        for item in items:
            if item is None:
                continue
            args.append(item if isinstance(item, ast.Arg) else ast.Arg(None, item, item.pos))
        return tuple(args)

    def keyword(self, meta: Any, items: list) -> ast.Arg:
        key, value = items
        return ast.Arg(str(key), value, _pos_of(key))

    def train(self, meta: Any, items: list) -> ast.TrainDecl:
        return ast.TrainDecl(tuple(items), _pos_of(meta_tree(meta)))

    def setting(self, meta: Any, items: list) -> ast.Setting:
        key, value = items
        return ast.Setting(str(key), value, _pos_of(key))

    def number(self, meta: Any, items: list) -> ast.Num:
        return _number(items[0])

    def name(self, meta: Any, items: list) -> ast.Name:
        return ast.Name(str(items[0]), _pos_of(items[0]))

    def string(self, meta: Any, items: list) -> ast.Str:
        token = items[0]
        return ast.Str(_unescape(str(token)[1:-1]), _pos_of(token))

    def call_value(self, meta: Any, items: list) -> ast.CallVal:
        name, args = items
        return ast.CallVal(str(name), args or (), _pos_of(name))

    def list(self, meta: Any, items: list) -> ast.ListVal:
        values = tuple(i for i in items if i is not None)
        return ast.ListVal(values, Pos(meta.line, meta.column, meta.column + 1))


class _MetaTree:
    """Wrap a lark Meta so _pos_of can read it like a Tree."""

    def __init__(self, meta: Any) -> None:
        self.meta = meta


def meta_tree(meta: Any) -> _MetaTree:
    """Adapt a rule's meta for _pos_of."""
    return _MetaTree(meta)


def _expected_words(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS.get(e, repr(e.strip('"').lower())) for e in expected})
    return ", ".join(words[:8])


def _end_pos(text: str) -> Pos:
    """Just past the last character of the last line that has any (lines split as the parser
    counts them)."""
    lines = source_lines(text)
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    col = len(lines[-1].removesuffix("\r")) + 1
    return Pos(len(lines), col, col + 1)


def _too_deep(tree: Tree) -> Optional[Pos]:
    """The position of the first value nested deeper than MAX_NESTING, found without recursion
    (the transformer recurses, so depth is checked before it runs)."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in _NESTING_RULES:
            depth += 1
            if depth > MAX_NESTING:
                return Pos(node.meta.line, node.meta.column, node.meta.column + 1)
        stack.extend((child, depth) for child in node.children)
    return None


# what a character carried over from Python or another framework's API means here
_CHARACTER_HINTS = {
    ";": " (a statement ends with its line)",
    "'": " (a string is written in double quotes; a name such as same or relu takes none)",
    ">": " (layers are chained with ->)",
}


def _token_hint(token: Token, expected: set[str]) -> str:
    """A hint for tokens that other notations put where dlspec expects something else."""
    if token.type == "LPAR" and "LSQB" in expected:
        return " (a list is written in brackets, as [3, 3])"
    if token.type == "EQUAL" and "COLON" in expected:
        return " (a layer is labelled with a colon, as h: dense(10))"
    if str(token) == "None" and expected == {"INT"}:
        return " (the batch axis is implicit: list the other dimensions, as float32[784])"
    return ""


def _syntax_problem(err: UnexpectedInput, text: str) -> SyntaxProblem:
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else "?"
        return SyntaxProblem(
            f"unexpected character {char!r}{_CHARACTER_HINTS.get(char, '')}",
            Pos(err.line, err.column, err.column + 1),
        )
    if isinstance(err, UnexpectedEOF):
        return SyntaxProblem(
            f"unexpected end of file; expected {_expected_words(err.expected)}", _end_pos(text)
        )
    assert isinstance(err, UnexpectedToken)
    token = err.token
    if token.type == "$END":
        return SyntaxProblem(
            f"unexpected end of file; expected {_expected_words(err.expected)}", _end_pos(text)
        )
    expected = err.accepts or err.expected
    hint = _token_hint(token, expected)
    return SyntaxProblem(
        f"unexpected {str(token)!r}; expected {_expected_words(expected)}{hint}", _pos_of(token)
    )


def parse(text: str, path: str = "<spec>") -> ast.SpecFile:
    """Parse spec text; raise SpecError (with positions) on any syntax error."""
    # a byte-order mark is not part of the spec (editors add it); columns count without it
    source = text.removeprefix("\ufeff")
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as err:
        raise SpecError([_syntax_problem(err, source)], path, text) from None
    deep = _too_deep(tree)
    if deep is not None:
        message = f"values nested more than {MAX_NESTING} deep"
        raise SpecError([SyntaxProblem(message, deep)], path, text)
    try:
        items = _ToAst().transform(tree)
    except VisitError as err:
        if not isinstance(err.orig_exc, _TooLarge):
            raise
        big = err.orig_exc
        message = f"a number with {big.digits} digits is out of range (limits: docs/semantics.md)"
        raise SpecError([BadValue(message, big.pos)], path, text) from None
    return ast.SpecFile(
        path=path,
        text=text,
        settings=tuple(i for i in items if isinstance(i, ast.Setting)),
        models=tuple(i for i in items if isinstance(i, ast.ModelDecl)),
        trains=tuple(i for i in items if isinstance(i, ast.TrainDecl)),
        blocks=tuple(i for i in items if isinstance(i, ast.BlockDecl)),
    )
