"""Blocks: named, parameterised sub-graphs, expanded into ordinary layers when the spec is lowered.

Every block definition is checked once, whether it is called or not (names, edges, the calls it
makes, recursion); then every call in the model is bound to its block's parameters and expanded,
recursively, into layers named `<instance>_<inner>` (docs/semantics.md, section 1.2.2). The passes,
the oracle and the backends only ever see the expanded layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from dlspec.errors import BadValue, DuplicateName, MissingValue, Pos, Problem, UnknownName
from dlspec.frontend import ast
from dlspec.frontend.labels import early_labels
from dlspec.frontend.sugar import split_activation
from dlspec.frontend.values import ValueProblem, integer, keyed_args, name_problem, suggest
from dlspec.ir.model import Layer
from dlspec.ir.ops import ELSEWHERE, OPS
from dlspec.limits import MAX_BLOCK_DEPTH, MAX_LAYERS, MAX_NAME_LENGTH

Env = dict[str, ast.Value]


def substitute(value: ast.Value, env: Env) -> ast.Value:
    """`value` with every bare name that is a parameter replaced by the parameter's value (which
    keeps its own position: the call's argument, or the default in the block's header)."""
    if isinstance(value, ast.Name):
        return env.get(value.id, value)
    if isinstance(value, ast.ListVal):
        return replace(value, items=tuple(substitute(v, env) for v in value.items))
    if isinstance(value, ast.CallVal):
        return replace(value, args=substitute_args(value.args, env))
    return value


def substitute_args(args: tuple[ast.Arg, ...], env: Optional[Env]) -> tuple[ast.Arg, ...]:
    """Arguments with parameters substituted in their values (keys are never substituted)."""
    if not env:
        return args
    return tuple(replace(arg, value=substitute(arg.value, env)) for arg in args)


def tensor_problem(
    name: str, pos: Pos, made: set[str], later: set[str], known: list[str]
) -> Optional[Problem]:
    """Why a chain cannot read tensor `name` (None when it can)."""
    if name in made:
        return None
    if name in later:
        return UnknownName(
            f"tensor {name!r} is made later: a chain reads only earlier tensors", pos
        )
    return UnknownName(f"unknown tensor {name!r}{suggest(name, known)}", pos)


@dataclass
class _Item:
    """One layer, or one call of another block, in a block body (activation sugar split)."""

    call: ast.Call
    label: Optional[ast.Name]
    reads: tuple[str, ...]  # `#i` (item i of this body) or a tensor name as written
    written: tuple[ast.Name, ...]  # the chain's listed sources, on its first item only
    block: Optional[ast.BlockDecl]
    name: str = ""  # the name inside the block: its label, or `<op>_<k>` / `<block>_<k>`


@dataclass
class _Out:
    """Where one model-level call's layers go, and what its expanded layers carry."""

    layers: list[Layer]
    raw: dict[str, ast.LayerSyntax]
    site: Pos  # the call in the model (its label, else its name): expanded names are chosen there
    written: tuple[ast.Name, ...]  # the call's listed sources: checked on the first layer made


class _Stop(Exception):
    """Expansion of one model-level call abandoned (its problem is already reported)."""


@dataclass
class _Binding:
    """A call bound to its block: parameter values and the repeat count (None: no `* N`)."""

    env: Env
    count: Optional[int]


@dataclass
class Blocks:
    """The file's block definitions, checked; `expand` turns a model-level call into layers."""

    decls: dict[str, ast.BlockDecl] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    ok: bool = True  # no definition has a problem: calls may be expanded
    overflow: bool = False  # an expansion went past MAX_LAYERS (reported once)
    instances: dict[str, Pos] = field(default_factory=dict)  # model-level instance names
    counters: dict[str, int] = field(default_factory=dict)

    @classmethod
    def check(cls, decls: tuple[ast.BlockDecl, ...], problems: list[Problem]) -> Blocks:
        """Check every definition once, whether or not the model calls it; problems found now
        and while expanding calls go to `problems`."""
        blocks = cls(problems=problems)
        before = len(problems)
        for decl in decls:
            blocks._declare(decl)
        for decl in blocks.decls.values():
            blocks._signature(decl)
        if blocks._recursion_free():
            blocks._depth()
        for decl in blocks.decls.values():
            blocks._body(decl, None, None, "", None)
        blocks.ok = len(problems) == before
        return blocks

    def names(self) -> list[str]:
        """Every block's name, in definition order."""
        return list(self.decls)

    # ---- definitions ---------------------------------------------------------------------

    def _declare(self, decl: ast.BlockDecl) -> None:
        if decl.name in OPS:
            message = f"block name {decl.name!r} is a layer op's name"
            self.problems.append(DuplicateName(message, decl.pos))
            return
        if decl.name in self.decls:
            self.problems.append(DuplicateName(f"a second block named {decl.name!r}", decl.pos))
            return
        problem = name_problem(decl.name, decl.pos, "block name")
        if problem:
            self.problems.append(problem)
        self.decls[decl.name] = decl

    def _signature(self, decl: ast.BlockDecl) -> None:
        seen: set[str] = set()
        defaulted = False
        for param in decl.params:
            if param.name in seen:
                message = f"block {decl.name!r}: parameter {param.name!r} is declared twice"
                self.problems.append(DuplicateName(message, param.pos))
            seen.add(param.name)
            if param.default is not None:
                defaulted = True
            elif defaulted:
                message = (
                    f"block {decl.name!r}: parameter {param.name!r} has no default but follows "
                    "one that has"
                )
                self.problems.append(BadValue(message, param.pos))
        if not decl.inputs:
            self.problems.append(MissingValue(f"block {decl.name!r} declares no input", decl.pos))
        if not any(isinstance(s, ast.LayerStmt) for s in decl.body):
            self.problems.append(MissingValue(f"block {decl.name!r} has no layers", decl.pos))

    def _calls(self, decl: ast.BlockDecl) -> list[ast.Call]:
        """The calls of other blocks in a body, in order."""
        return [
            call
            for stmt in decl.body
            if isinstance(stmt, ast.LayerStmt)
            for call in stmt.calls
            if call.op in self.decls
        ]

    def _recursion_free(self) -> bool:
        """Report every call that closes a cycle (depth first, without recursion: a file may
        define thousands of blocks)."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        found = False
        for root in self.decls:
            if root in state:
                continue
            path = [root]
            stack = [iter(self._calls(self.decls[root]))]
            state[root] = 1
            while stack:
                call = next(stack[-1], None)
                if call is None:
                    state[path.pop()] = 2
                    stack.pop()
                elif state.get(call.op) == 1:
                    cycle = path[path.index(call.op) :] + [call.op]
                    if len(cycle) > 8:  # a long cycle, shown by its ends
                        cycle = cycle[:4] + [f"... ({len(cycle) - 7} more)"] + cycle[-3:]
                    message = f"block {call.op!r} calls itself: {' -> '.join(cycle)}"
                    self.problems.append(BadValue(message, call.pos))
                    found = True
                elif call.op not in state:
                    state[call.op] = 1
                    path.append(call.op)
                    stack.append(iter(self._calls(self.decls[call.op])))
        return not found

    def _depth(self) -> None:
        """Blocks nested at most MAX_BLOCK_DEPTH deep (the graph is acyclic here); the block at
        which a chain of calls first goes past the limit is reported."""
        depth: dict[str, int] = {}
        for root in self.decls:
            stack = [root]
            while stack:
                name = stack[-1]
                callees = [c.op for c in self._calls(self.decls[name])]
                todo = [c for c in callees if c not in depth]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                if name in depth:
                    continue
                depth[name] = 1 + max((depth[c] for c in callees), default=0)
                if depth[name] == MAX_BLOCK_DEPTH + 1:
                    decl = self.decls[name]
                    message = (
                        f"block {name!r} nests blocks {depth[name]} deep; the limit is "
                        f"{MAX_BLOCK_DEPTH}"
                    )
                    self.problems.append(BadValue(message, decl.pos))

    # ---- calls ---------------------------------------------------------------------------

    def _bind(self, decl: ast.BlockDecl, call: ast.Call, reads: int) -> Optional[_Binding]:
        """Parameter values for a call (arguments, then defaults), checked against the block's
        signature and its inputs; None (with problems reported) when they do not fit."""
        before = len(self.problems)
        order = tuple(dict.fromkeys(p.name for p in decl.params))  # a name declared twice: once
        got, problems = keyed_args(call.args, order, order, f"block {decl.name!r}", "parameter")
        self.problems.extend(problems)
        for param in decl.params:
            if param.default is None and param.name not in got:
                message = f"block {decl.name!r} needs {param.name}="
                self.problems.append(MissingValue(message, call.pos))
        inputs = decl.inputs
        if reads and inputs and reads != len(inputs):
            names = ", ".join(n.id for n in inputs)
            message = (
                f"block {decl.name!r} reads {len(inputs)} tensor(s) ({names}); this call gives "
                f"it {reads}"
            )
            if len(inputs) > 1 and reads == 1:
                message += f": list them, as in [{names}] -> {decl.name}(...)"
            self.problems.append(BadValue(message, call.pos))
        count = None
        if call.repeat is not None:
            try:
                count = integer(call.repeat, "a repeat count", 1, MAX_LAYERS)
            except ValueProblem as err:
                self.problems.append(err.problem)
            if len(inputs) > 1:
                message = (
                    f"block {decl.name!r} has {len(inputs)} inputs: only a block with one input "
                    "repeats (each repetition reads the previous one's output)"
                )
                self.problems.append(BadValue(message, call.repeat.pos))
        if len(self.problems) > before:
            return None
        env = {p.name: got[p.name] if p.name in got else p.default for p in decl.params}
        return _Binding({k: v for k, v in env.items() if v is not None}, count)

    def not_a_block(self, call: ast.Call) -> Optional[Problem]:
        """The problem with `* N` after a call that is not a block's (None without `* N`)."""
        if call.repeat is None:
            return None
        if call.op in OPS:
            message = f"only a block call repeats; {call.op!r} is a layer"
            return BadValue(message, call.repeat.pos)
        return UnknownName(f"unknown block {call.op!r}{suggest(call.op, self.names())}", call.pos)

    def expand(
        self,
        call: ast.Call,
        label: Optional[ast.Name],
        reads: tuple[str, ...],
        written: tuple[ast.Name, ...],
        taken: set[str],
        layers: list[Layer],
        raw: dict[str, ast.LayerSyntax],
    ) -> tuple[str, ...]:
        """Expand one call in the model into `layers`; the tensor the rest of the chain reads
        (none when the call has a problem, which is then reported). `taken` holds the model's
        labels and input names, which automatic instance names skip."""
        decl = self.decls[call.op]
        if label is not None:
            name = label.id
            problem = name_problem(name, label.pos, "block instance name")
            if problem:
                self.problems.append(problem)
                return ()
            if name in self.instances:
                message = f"block instance name {name!r} is used twice"
                self.problems.append(DuplicateName(message, label.pos))
                return ()
        else:
            name = self._auto_name(decl.name, taken)
        site = label.pos if label is not None else call.pos
        self.instances[name] = site
        binding = self._bind(decl, call, len(reads))
        if binding is None or not reads or not self.ok or self.overflow:
            return ()  # not reads: the chain has no input, which is reported already
        out = _Out(layers, raw, site, written)
        try:
            output = self._instance(decl, binding, reads, name, out)
        except _Stop:
            return ()
        for key, syntax in reversed(raw.items()):
            if syntax.label == output:
                raw[key] = replace(syntax, aliases=(*syntax.aliases, (name, site)))
                break
        return (output,)

    def _auto_name(self, block: str, taken: set[str]) -> str:
        """`<block>_<k>`, counting each block's unlabelled calls from 1 in spec order, skipping
        labels, input names and earlier instance names."""
        while True:
            self.counters[block] = self.counters.get(block, 0) + 1
            name = f"{block}_{self.counters[block]}"
            if name not in taken and name not in self.instances:
                return name

    def _instance(
        self, decl: ast.BlockDecl, binding: _Binding, reads: tuple[str, ...], name: str, out: _Out
    ) -> str:
        """Expand one call (every repetition); the caller-level name of its output tensor."""
        if binding.count is None:
            return self._body(decl, binding.env, reads, name, out) or ""
        for r in range(1, binding.count + 1):
            reads = (self._body(decl, binding.env, reads, f"{name}_{r}", out) or "",)
        return reads[0]

    # ---- bodies --------------------------------------------------------------------------

    def _items(self, decl: ast.BlockDecl, env: Optional[Env]) -> list[_Item]:
        """The body's layers and calls in order, parameters substituted (env None: as written)."""
        items: list[_Item] = []
        previous = ""
        for stmt in decl.body:
            if isinstance(stmt, ast.BlockInput):
                previous = stmt.names[-1].id
                continue
            if not isinstance(stmt, ast.LayerStmt):
                continue
            reads: tuple[str, ...] = tuple(n.id for n in stmt.sources) or (
                (previous,) if previous else ()
            )
            written = stmt.sources
            if not reads and decl.inputs:
                message = "this layer has no input: declare an input before it"
                self.problems.append(MissingValue(message, stmt.pos))
            for call, label in zip(stmt.calls, stmt.labels, strict=True):
                call = replace(call, args=substitute_args(call.args, env))
                block = self.decls.get(call.op)
                parts = [call] if block is not None else split_activation(call)
                if block is None:
                    self._check_op(call)
                for i, part in enumerate(parts):
                    items.append(_Item(part, label if i == 0 else None, reads, written, block))
                    reads, written = (f"#{len(items) - 1}",), ()
            previous = reads[0] if reads else previous
        return items

    def _check_op(self, call: ast.Call) -> None:
        problem = self.not_a_block(call)
        if problem is None and call.op not in OPS:
            hint = suggest(call.op, sorted(OPS) + self.names(), ELSEWHERE)
            problem = UnknownName(f"unknown layer {call.op!r}{hint}", call.pos)
        if problem:
            self.problems.append(problem)

    def _name_items(self, decl: ast.BlockDecl, items: list[_Item]) -> None:
        """Labels checked and unique within the block (its inputs included); unlabelled items
        named `<op>_<k>` or `<block>_<k>`, counting from 1 in order, skipping names taken."""
        taken: dict[str, str] = {}
        for name in decl.inputs:
            if name.id in taken:
                message = f"input name {name.id!r} is used twice"
                self.problems.append(DuplicateName(message, name.pos))
            taken[name.id] = "input"
        for item in items:
            if item.label is None:
                continue
            item.name = label = item.label.id
            if label in taken:
                used = "is an input's name" if taken[label] == "input" else "is used twice"
                self.problems.append(DuplicateName(f"layer name {label!r} {used}", item.label.pos))
                continue
            problem = name_problem(label, item.label.pos, "layer name")
            if problem:
                self.problems.append(problem)
            taken[label] = "layer"
        counters: dict[str, int] = {}
        for item in items:
            if item.label is not None:
                continue
            kind = item.block.name if item.block is not None else item.call.op
            while True:
                counters[kind] = counters.get(kind, 0) + 1
                item.name = f"{kind}_{counters[kind]}"
                if item.name not in taken:
                    break
            taken[item.name] = "layer"

    def _output(self, decl: ast.BlockDecl, items: list[_Item]) -> Optional[str]:
        """The name (inside the block) of the tensor it returns, checked."""
        outputs = decl.outputs
        for extra in outputs[1:]:
            message = "a second output statement (a block returns one tensor)"
            self.problems.append(DuplicateName(message, extra.pos))
        if not outputs:
            return items[-1].name if items else None
        ref, *more = outputs[0].names
        for extra_name in more:
            message = f"block {decl.name!r} returns one tensor; list only one"
            self.problems.append(BadValue(message, extra_name.pos))
        if ref.id in {n.id for n in decl.inputs}:
            message = f"output {ref.id!r} is an input: a block's output is a layer's tensor"
            self.problems.append(BadValue(message, ref.pos))
            return None
        names = [item.name for item in items]
        problem = tensor_problem(ref.id, ref.pos, set(names), set(), names)
        if problem:
            self.problems.append(problem)
            return None
        return ref.id

    def _edges(self, decl: ast.BlockDecl, items: list[_Item]) -> None:
        """Every tensor a chain lists is made before it, inside the block."""
        inputs = [n.id for n in decl.inputs]
        known = inputs + [item.name for item in items]
        made, later = set(inputs), {item.name for item in items}
        for item in items:
            for ref in item.written:
                problem = tensor_problem(ref.id, ref.pos, made, later, known)
                if problem:
                    self.problems.append(problem)
            made.add(item.name)
            later.discard(item.name)

    def _used(self, decl: ast.BlockDecl, items: list[_Item], output: str) -> None:
        """Every layer reaches the block's output and every input is read."""
        needed = {output}
        for item in reversed(items):
            if item.name in needed:
                needed.update(self._local(items, ref) for ref in item.reads)
        hints = {early.after_pos: early.hint() for early in early_labels(decl.body, self.decls)}
        for item in items:
            if item.name not in needed:
                message = (
                    f"layer {item.name!r} of block {decl.name!r} is not used: its output reaches "
                    "no block output"
                )
                hint = hints.get(item.call.pos, "")
                self.problems.append(BadValue(message + hint, item.call.pos))
        for name in decl.inputs:
            if name.id not in needed:
                message = f"input {name.id!r} of block {decl.name!r} is not read by any layer"
                self.problems.append(BadValue(message, name.pos))

    @staticmethod
    def _local(items: list[_Item], ref: str) -> str:
        """The block-local tensor name a read refers to."""
        return items[int(ref[1:])].name if ref.startswith("#") else ref

    def _body(
        self,
        decl: ast.BlockDecl,
        env: Optional[Env],
        inputs: Optional[tuple[str, ...]],
        prefix: str,
        out: Optional[_Out],
    ) -> Optional[str]:
        """Walk a block body: check it (always) and, given an _Out, emit its layers for the
        instance `prefix` reading the caller's tensors `inputs`. Returns the caller-level name
        of the instance's output tensor (None when only checking, or on a problem)."""
        before = len(self.problems)
        items = self._items(decl, env)
        self._name_items(decl, items)
        self._edges(decl, items)
        output = self._output(decl, items)
        if output is not None and len(self.problems) == before:
            self._used(decl, items, output)
        if out is None or inputs is None:
            for item in items:
                if item.block is not None:
                    self._bind(item.block, item.call, len(item.reads))
            return None
        if output is None or len(self.problems) > before:
            raise _Stop
        tensors: dict[str, str] = {n.id: t for n, t in zip(decl.inputs, inputs, strict=True)}
        for item in items:
            reads = tuple(tensors[self._local(items, ref)] for ref in item.reads)
            full = f"{prefix}_{item.name}"
            if item.block is None:
                self._emit(out, full, item.call, reads)
                tensors[item.name] = full
                continue
            binding = self._bind(item.block, item.call, len(reads))
            if binding is None:
                raise _Stop
            tensors[item.name] = self._instance(item.block, binding, reads, full, out)
        return tensors[output]

    def _emit(self, out: _Out, name: str, call: ast.Call, reads: tuple[str, ...]) -> None:
        """One expanded layer: named now (a label), positioned at its call in the block body."""
        if len(name) > MAX_NAME_LENGTH:
            message = (
                f"this call names a layer {name!r} of {len(name)} characters; the limit is "
                f"{MAX_NAME_LENGTH} (a shorter instance label or block name would do)"
            )
            self.problems.append(BadValue(message, out.site))
            raise _Stop
        if len(out.layers) >= MAX_LAYERS:
            message = f"this call expands the model past {MAX_LAYERS} layers, the limit"
            self.problems.append(BadValue(message, out.site))
            self.overflow = True
            raise _Stop
        key = f"#{len(out.layers)}"
        out.layers.append(Layer(key, call.op, {}, call.pos, inputs=reads))
        out.raw[key] = ast.LayerSyntax(call.args, name, out.site, out.written)
        out.written = ()
