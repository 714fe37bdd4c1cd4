"""The fast formatter (dlspec.codegen.pyformat) writes black's bytes, byte for byte.

Checked against black itself (through the tests' cache of black's output) on every example and
regression spec for every target, on a seeded batch of fuzzed specs, on snippets of what black
treats specially, and on lines of the templates' shapes whose lengths straddle the limit."""

from __future__ import annotations

import random
import subprocess
import sys
from functools import cache
from pathlib import Path

import black
import pytest

from dlspec.backends import TARGETS
from dlspec.codegen import pyformat
from dlspec.codegen.compile import unformatted
from dlspec.codegen.pyformat import isolated, segments
from dlspec.codegen.pyformat.scan import scan, scan_segment
from dlspec.codegen.render import (
    PY2_FORMAT,
    PY3_FORMAT,
    FormatMode,
    format_source,
    format_with_black,
)
from dlspec.errors import SpecError
from dlspec.frontend.load import build, build_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))
SPECS = sorted((ROOT / "tests").glob("specs*/*.dl"))
FUZZ_SEED, FUZZ_CASES, FUZZ_MAX_BYTES = 20261, 60, 200_000

sys.path.insert(0, str(ROOT / "tools"))  # the fuzzer's modules live in tools/
import fuzz  # noqa: E402
import fuzz_mutations  # noqa: E402


@cache
def _sources(spec: Path) -> dict[str, tuple[str, FormatMode]]:
    """target -> (the rendered script before formatting, its format), for a spec file."""
    model = build_file(str(spec.relative_to(ROOT))).model
    return {target: unformatted(model, target) for target in TARGETS}


def _fast(source: str, mode: FormatMode) -> str:
    """The fast formatter alone (Unsupported propagates: black must not be needed)."""
    return pyformat.format_python(source, mode.py2)


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_need_no_black_and_match_the_goldens(spec: Path) -> None:
    """The statement-by-statement tier alone (the fastest) writes every golden."""
    for target, (source, mode) in _sources(spec).items():
        name = f"{build_file(str(spec)).model.name}_{target}.py"
        golden = (ROOT / "generated" / target / name).read_text(encoding="utf-8")
        assert pyformat._format_by_statement(source, mode.py2) == golden, f"{spec.name} {target}"


@pytest.mark.parametrize("spec", EXAMPLES + SPECS, ids=[p.stem for p in EXAMPLES + SPECS])
def test_every_target_is_black_byte_for_byte(spec: Path) -> None:
    for target, (source, mode) in _sources(spec).items():
        assert _fast(source, mode) == format_with_black(source, mode), f"{spec.name} {target}"


def _fuzzed_sources() -> list[tuple[str, str, FormatMode]]:
    """(case, source, format) of the seeded fuzz cases that compile, small ones only."""
    corpus = fuzz_mutations.load_corpus()
    out = []
    for index in range(FUZZ_CASES):
        case = fuzz.make_case(FUZZ_SEED, index, corpus)
        try:
            model = build(case.data.decode("utf-8"), "fuzz.dl").model
        except (SpecError, UnicodeDecodeError):
            continue
        for target in case.targets:
            try:
                source, mode = unformatted(model, target)
            except SpecError:
                continue
            if len(source) <= FUZZ_MAX_BYTES:
                out.append((f"{index}-{target}", source, mode))
    return out


def test_fuzzed_specs_are_black_byte_for_byte() -> None:
    cases = _fuzzed_sources()
    assert (
        len(cases) >= 15
    )  # 19 at seed 20261 (20 before a pytorch script grew past FUZZ_MAX_BYTES)
    for name, source, mode in cases:
        assert format_source(source, mode) == format_with_black(source, mode), name


SNIPPETS = {
    "long calls": (
        "x = some.module.function_name(argument_one, argument_two, argument_three, four_long)\n"
        "self.layer = nn.Conv2d(64, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1),"
        " dilation=(1, 1), bias=False)\n"
        "def f():\n    return torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9,"
        " eps=1e-07, momentum=0.0, centered=False, weight_decay=0.0)\n"
        "x = layers.Conv2D(64, (7, 7), strides=(2, 2), padding='valid', data_format=data_format,"
        " use_bias=False, name='conv1')(x)\n"
        "parser.add_argument('--verify-precision', choices=('float32', 'float64'),"
        " default='float32', help='dlspec verify: the dtype of the model')\n"
        "print('epoch %d: loss %.4f, %.2f s' % (epoch + 1, losses[-1], seconds[-1]), file=sys.stderr)\n"
        "value = first_function(argument)[index_value].method_call(another, keyword=value_of_key)\n"
    ),
    "nested brackets and magic commas": (
        "x = {'a': [1, 2, 3,], 'b': (1,), 'c': f(a, b,), 'd': {1, 2}}\n"
        "PARAMETERS = [\n    ('conv1.weight', (64, 3, 7, 7)),\n    ('bn1.weight', (64,)),\n]\n"
        "call(\n    a,\n    b,\n)\n"
        "x = [(1, 2)]\nINPUTS = [('pixels', (784,), 'float32')]\ny = (64,)\nz = 1,\n"
        "x = [[1, 2], [3, 4]][0][1]\ny = f(g(h(i(j(k)))))\n"
        "d = {\n    'k': [\n        'a',\n        'b',\n    ],\n    'v': f(\n        x,\n    ),\n}\n"
    ),
    "tuples ending in a comma": (
        "x, = y\nx, y, = z\na = b, = c\na, = b = c\na[0], = struct.unpack('<H', data)\n"
        "for x, in y:\n    pass\nfor x in y,:\n    pass\nfor x, in y, z:\n    pass\n"
        "def f():\n    size, = unpack('<i', read(4))\n    return size\n"
    ),
    "strings": (
        "a = 'single'\nb = \"double\"\nc = 'it\\'s'\nd = \"say \\\"hi\\\"\"\ne = u'unicode'\n"
        "f = B'bytes'\ng = r'raw\\d'\nh = 'mixed \"quotes\"'\nk = f'{name}_{index}'\n"
        "m = '\\x1B\\u00E9\\N{bullet}'\ns = 'implicit' 'concatenation'\n"
        "t = ('a very long implicit concatenation of strings that goes past the line length'"
        " ' limit of one hundred')\n"
    ),
    "comments": (
        "x = 1  # trailing comment\n#no space\n#!shebang-like\n# normal\ny = 2\n"
        "def f():\n    x = 1\n\n    # the end of a block\n# the top level\ny = 2\n"
        "if a:\n    pass\n    # deeper\n  # between\nelse:\n    pass\n"
        "RESULT = {\n    'threads': 4,\n    # between items\n    'cuda': None if gpu else 'x',\n}\n"
    ),
    "docstrings": (
        '"""Module docstring."""\nimport os\n'
        "def f():\n    '''Single quotes.'''\n    return 1\n"
        'class A:\n\n    """Class docstring.\n\n       Indented more.\n    """\n    x = 1\n'
        'def g():\n    """   Leading spaces, and a quote at the end\\""""\n'
    ),
    "subscripts and slices": (
        "a = x[1:2]\nb = x[:, 0]\nc = x[::-1]\nd = x[a + 1 :]\ne = x[lower:upper]\n"
        "f = x[fn(a) : fn(b)]\ng = x[-1:]\nh = x[a.b : c]\ny = x[i * SIZE : (i + 1) * SIZE]\n"
    ),
    "lambdas, powers, unary operators": (
        "f = lambda x: x ** 2\ng = lambda: -1\nh = 2 ** -x\ni = a.b ** c.d\nj = x ** f(y)\n"
        "k = -x ** 2\ny = -x + +z - ~w\nz = not a\nw = a if not b else -c\nv = f(a=-1, b=+2)\n"
    ),
    "power operators": (
        "a = f(x).y ** 2\nb = x.y ** z.w\nc = lambda **k: k\nd = [x ** y for y in f(z)]\n"
        "e = x[0] ** 2\ng = 2 ** -x.y\nh = x ** y[0]\ni = -x ** ~y\n"
    ),
    "return and assignment splits": (
        "def f():\n    return some_function_with_a_long_name(first_argument, second_argument)"
        " + another_call(third)\n"
        "result = aaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbb.cccccccccccccccccccccccccc"
        "ccccccccccccc\n"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx = yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
        " = zzzzzzzzzzzz\n"
        "values = (first_item, second_item, third_item, fourth_item, fifth_item, sixth_item, seven)\n"
        "steps = math.ceil(TRAIN_SIZE / BATCH_SIZE) if synthetic else math.ceil(len(y_train) / SIZE)\n"
        "pool = [[torch.from_numpy(a[i * SIZE : (i + 1) * SIZE]).to(device) for a in x_pool] for"
        " i in range(n)]\n"
    ),
    "headers": (
        "if some_condition and another_condition or yet_another_condition and the_final_one:\n"
        "    pass\n"
        "for index, (first, second) in enumerate(zip(first_list_of_values, second_list_values)):\n"
        "    pass\n"
        "with open(os.path.join(directory, name), 'rb') as handle, other_manager() as other:\n"
        "    pass\n"
        "try:\n    pass\nexcept (ValueError, TypeError) as error:\n    raise\nfinally:\n    pass\n"
        "@contextlib.contextmanager\ndef g(a, b=1, *args, c=2, **kwargs):\n    yield\n"
    ),
    "blank lines": (
        "import os\n\n\nx = 1\nimport sys\ny = 2\n"
        "def f():\n    import math\n    z = 1\n    def g():\n        pass\n    return g\n"
        "# above a def, right on it\ndef h():\n    pass\n\n# one blank line, then on it\n"
        "@decorator\n# between a decorator and its def\ndef k():\n    pass\n"
        "class A:\n    'Docstring.'\n    def m(self):\n        pass\n    # after a method\n"
        "    x = 1\nclass B:\n    def n(self):\n        pass\nif x:\n    pass\n"
        "class C:\n    def o(self):\n        pass\n    with a:\n        pass\nelse_ = 1\n"
        "if y:\n    # first in a block\n    def p():\n        pass\n"
        "x = 3\n\n\n\n\n# four blank lines above\n\n\n\ny = 4\n"
        "z = 5\n# a run of comments\n# right on a def\ndef s():\n    pass\n"
    ),
    "a module docstring then comments": (
        "'Module.'\n# a comment\n\n\n\nimport os\n\n# above a class\nclass D:\n\n    x = 1\n"
    ),
    "annotations and unpacking": (
        "def g(a, b: int, c: 'x' = None, *args, d=1, e=f(x), h: int = a.b, **kwargs):\n"
        "    return {**a, 'b': 1, **c}\n"
        "y = f(*a, **{**b, **c})\nz = [*a, *b]\nw = -x[a:-1] + +y ** -z\n"
    ),
    "optional parentheses, long statements": (
        "first_long_variable_name_number_one, second_long_variable_name_number_two, third_variable_name_three = v\n"
        "for first_long_variable_name_number_one, second_long_variable_name_number_two, third_name_three in v:\n"
        "    pass\n"
        "from some_package.some_module import first_imported_name_longer, second_imported_name_longer, third_name_x\n"
        "from some_package.some_module import (first_imported_name_longer, second_imported_name_longer, third_name)\n"
        "for (first_loop_variable_name, second_loop_variable_name) in some_function_name(argument_one_and_more):\n"
        "    pass\n"
        "for (first_loop_variable_name_number_one_and_more, second_loop_variable_name_number_two, third_x) in y:\n"
        "    pass\n"
        "with some_context_manager(argument_number_one_and_more) as first, other_context_manager(argument) as b:\n"
        "    pass\n"
        "with (some_context_manager_name(argument_number_one_and_more, argument_number_two, argument_three_x)):\n"
        "    pass\n"
        "with (some_context_manager_name(argument_number_one_and_more), other_manager_name(argument_two_x)) as c:\n"
        "    pass\n"
        "with ((some_context_manager_name(argument_number_one_and_more)), other_manager_name(argument_two_xy)):\n"
        "    pass\n"
        "for x in (some_function_name(argument_number_one_and_more, argument_number_two, argument_number_three)):\n"
        "    pass\n"
        "(some_long_target_name_one_and_more) = some_function_name(argument_number_one_and_more, argument_number_two, ar)\n"
        "(some_long_target_name_one_and_more, xy) = some_function_name(argument_number_one_and_more, argument_number_two)\n"
        "print(a) if (some_condition_name_number_one_and_more and some_condition_name_number_two) else print(bbbb)\n"
    ),
    "optional parentheses, split or nested": (
        "with (a, b):\n"
        "    pass\n"
        "for (x, y) in z:\n"
        "    pass\n"
        "with ((a)), ((b)) as c:\n"
        "    pass\n"
        "with ((a, b)):\n"
        "    pass\n"
        "first_long_variable_name_number_one, second_long_variable_name_number_two, third_variable_name = value_x\n"
        "result_value = first_operand_value | second_operand_value | third_operand_value | fourth_operand_value_x\n"
        "some_variable = (long_function_call_name(argument_number_one, argument_number_two, argument_number_three, a4),)\n"
        "def f():\n"
        "    return (long_function_call_name(argument_number_one, argument_number_two, argument_number_three, a4),)\n"
        "some_variable = (long_function_call_name(argument) for argument_number_one in arguments_number_two_x)\n"
        "some_variable_with_a_really_long_name = function_name_which_is_long(argument_one, argument_number_two)[()]\n"
        "(\n"
        "    a,\n"
        "    b,\n"
        ") = 1\n"
        "(\n"
        "    a\n"
        ") = some_function_name(argument_number_one, argument_number_two, argument_number_three, argument_4x)\n"
        "(\n"
        "    a, b\n"
        ") = some_function_name(argument_number_one, argument_number_two, argument_three, argument_4x)\n"
        "def f():\n"
        "    x = yield some_function_name(argument_number_one, argument_number_two, argument_three, argument_4x)\n"
        "x = (\n"
        "    (\n"
        "        y  # comment\n"
        "    )\n"
        ")\n"
        "x = (\n"
        "    (  # comment\n"
        "        y\n"
        "    )\n"
        ")\n"
    ),
    "optional parentheses": (
        "with (a, b) as c:\n    pass\nwith (a, b), c:\n    pass\nwith a, (b):\n    pass\n"
        "with (open(f)) as g:\n    pass\nfor (*a, b) in c:\n    pass\n(\n    a\n) = 1\n"
        "with (a for a in b):\n    pass\nfor (x,) in y:\n    pass\nwith (a,):\n    pass\n"
        "def k():\n    return (  # about x\n        (x)\n    )\n"
        "first_long_variable_name_number_one, second_long_variable_name_number_two, third = value\n"
        "def f():\n    x = (yield)\n    return (yield)\n"
        "def g():\n    return (x for x in y)\ndef h():\n    return ()\ndef i():\n    return (1,)\n"
        "def j():\n    return ((  # about x\n        x\n    ))\nfrom m import *\n"
        "first_long_name_of_a_variable, second_long_name_of_a_variable = some_function_call(one, two)\n"
        "result = (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa + bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        " + ((cccccccccccccccccccccccccc)))\n"
    ),
    "what decides whether a line fits": (
        "call(a,\n    # a comment of its own inside the brackets\n    b)\n"
        "value = 'a string literal so long that even on its own line it would not fit within the"
        " limit of 100 chars'.upper\n"
        "result = table_of_values[  # a comment long enough that with the code it passes the limit\n"
        "    index\n].method(argument_one, argument_two)[0]\n"
        "result = table_of_values[index].method(  # a comment long enough that with the code it"
        " passes the limit\n    argument\n)[0]\n"
    ),
    "one item per line": (
        "allowed = (first_condition_of_several and  # why the first one matters\n"
        "    second_condition_of_several or third_condition_of_several)\n"
        "message = ('the first part of a message'  # first\n    'the second part'  # second\n"
        "    'the third part of it, long enough to split')\n"
        "value = combine(first_argument_value,\n    second_argument  # about the second\n"
        "    + third_argument, fourth_argument_value_long_enough)\n"
        "call(\n    first_argument,\n    second_argument\n    # the last word\n)\n"
        "call(\n    # a comment alone\n    argument\n)\n"
        "outer(inner(*arguments_of_the_inner_call), second_argument_of_the_outer_call,"
        " third_argument_long_enough)\n"
        "result = wrapper(\n    first_function(argument_value).method_call(another_argument,"
        " keyword_argument=value_of_the_keyword)\n)\n"
    ),
    "cut at a bracket pair": (
        "value = function_with_a_long_name(first_argument, second,)(third_argument,"
        " fourth_argument)\n"
        "value = a_function_whose_name_is_so_long_that_even_the_head_of_the_line_cannot_fit"
        "_within_the_limit_at_all(first, second,)(third)\n"
        "def a_function_with_a_rather_long_name_for_the_test("
        "the_only_parameter_it_takes_is_longer_still_now=10):\n    pass\n"
        "def another_function_with_a_name_so_long_that_the_line_does_not_fit_even_without"
        "_any_parameters_given():\n    pass\n"
        "def a_function_with_a_rather_long_name_for_the_test_case(first_parameter,"
        " second_parameter_here_too):\n"
        "    return first_value_of_the_tuple_here, second_value_of_the_tuple_x,"
        " third_value_of_the_tuple_is_ok\n"
        "value = first_function_name(argument_one, argument_two, argument_three)"
        ".second_method_name_longer_now()\n"
        "values = [\n    function_call(argument_one, argument_two),\n]\n"
        "values = [first_element_name, second_element_name, third_element_name,"
        " fourth_element_name_x, fifth_one]\n"
        "value = first_argument_name + second_argument_name"
        " + a_function_name_long_enough(argument_one, two_three)\n"
        "value = function_name(first, second,)(a_trailer_so_long_that_alone_it_does_not_fit"
        "_in_the_line, with_a_second_argument, and_a_third_one_too)\n"
        "value = first_object_with_a_long_name.method_one(argument_one)"
        ".method_two(argument_two_is_long).method_three(argument_three_is_long, and_more)\n"
        "result = compute(\n    # only a comment inside\n)\n"
    ),
    "trailers left after the cut": (
        "result = a_function_with_a_long_name_for_the_head(first_argument, second_argument,"
        " third_argument_x)[\n    # a comment about the index\n    index\n]\n"
        "value = first_function(argument)(nested_function(first_argument, second_argument,))\n"
        "value = first_function(argument_one, argument_two)"
        ".second_function_with_a_long_name_that_is_so_long_too((single_item,))\n"
    ),
    "optional parentheses left out": (
        "from a_package.with_a_long_module_name.and_more"
        " import a_function_name_that_is_very_long_indeed_0123_xxxxx\n"
        "first_target = second_target"
        " = some_value_that_is_long_enough_to_not_fit_and_has_no_brackets_0123456_xxxxx\n"
        "def f():\n"
        "    return some_object.method_one(argument_one,"
        " argument_two_long).method_two(argument_three_01_xxxxxxxxx)\n"
        "table[index] = a_function_with_an_extremely_long_name_that_does_not_fit_after_the"
        "_target_xyz_01_xxxxxxx(a)\n"
        "with open('a_long_file_name_here') as first_file,"
        " open('another_long_file_name') as second_file_0123_xxxx:\n"
        "    pass\n"
        "value = [first_element_of_list, second_element_of_list,"
        " third_element_long][index] + other_value_0123_xxxx\n"
        "value = first_value + some_function_with_a_very_long_name_that_takes_nothing_at_all"
        "_and_more_0123_xxxxxx()\n"
        "value = [a, b] + an_extremely_long_variable_name_that_goes_on_and_on_and_on_and_on"
        "_and_on_forever_0123_xxx\n"
        "value = [a, b] + function_name(argument_that_is_long_enough,"
        " another_argument_here_too).attribute_01_xxxxx\n"
        "value = an_extremely_long_variable_name_that_goes_on_and_on_and_on_and_on_and_on_for"
        "_0123456_xxxx + [a, b]\n"
    ),
    "what black rewrites": (
        "return_ = (x)\nfor (i) in (range(3)):\n    pass\nif (a):\n    pass\nwhile (b):\n"
        "    break\nclass A():\n    pass\ndel (a), b\nprint((yield))\n"
        "from a import (b)\nfrom . import c\nimport d.e as f\nglobal g\nassert (x), 'message'\n"
        "n = [0XFF, 1E5, 1.0E-5, 0o17, 0B1, 1.5J, .5, 5.]\n"
        "def f(a, b):\n\n    return a\n\n\n\n\ndef g():\n    pass\nx = 1\n"
    ),
    "a block indented one space, ending in comments": "if x:\n pass\n # c\n# d\n",
    "relative imports": (
        "from . import a\n" "from .. import a\n" "from .a import b\n" "from ..a.b import c\n"
    ),
    "the comma a split adds, before a standalone comment": (
        "from some_module import (\n"
        "    some_name_that_is_long\n"
        "    # comment\n"
        ")\n"
        "def function_name(\n"
        "    argument_name\n"
        "    # comment\n"
        "):\n"
        "    pass\n"
    ),
    "where the optional parentheses are left out": (
        "first_target = second_target_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxx = value\n"
        "x = a_name.attr_one.attr_two.attr_three_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxx\n"
        "first_target = second_target_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxx = value\n"
        'some_dict["key"][other] = long_value_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
        "xxxxxxxxxxxxxxxxx\n"
        "first_target = second_target_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx = val"
        "ue_call(argument)\n"
        "some_dict[key] = long_value_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxx\n"
        "x = (  # comment\n"
        "    aaaa.bbbb_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxx(c)\n"
        ")\n"
        "some_value_name = [] + some_long_object_name.some_attribute_method_name_xxxxxxxx(arg"
        "ument_value).attr\n"
        "some_value_name = [first, second] + some_very_long_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
        "some_value_name = first_value_long + second_mapping_value[key_xxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxx]\n"
        "some_value_name = first_value_long + {key_value: other_xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxx}\n"
        "some_value_name = bbbb[1] + fooooxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxx()\n"
        "some_value_name = first_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx + cccc(long_argument_number_one)\n"
        "some_value_name = [first, second] + cccc_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx(lo"
        "ng_argument_number_one, long_argument_two).attr\n"
    ),
    "optional parentheses forced after a right-hand split": (
        "some_value = some_object_name_xxxxxxxxxxxxxxxxxxxxxxxxxxx[  # comment xxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxx\n"
        "    a\n"
        "]\n"
        "def f():\n"
        "    return some_object_name.method_name_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxx(a)  # comment\n"
    ),
    "what the split driver decides": (
        "resultx = compute_something(argument_one, argument_two, argument_three_is_long) + va"
        "lue ** 2 + b ** 2\n"
        "w = ('a' 'bccc'  # why\n"
        " and beta)\n"
        "some.attribute.chain[index] = function_name(x, some_function_name, obj.method(a)  # "
        "end\n"
        ")(second_call_argument)\n"
        "z = x[1].y ** 2\n"
    ),
    "a bytes string first in the file": "b'  not a docstring  '\nx = 1\n",
    "what a line knows of itself": (
        "x = f(a,)\n"
        "\n"
        "r = (x,)\n"
        "def f_long_name_here():\n"
        "    return (['sssssssss', 'sssssssssssss', beta],)\n"
        "class C0():  # note\n"
        "    '''one'''\n"
        "    global q  # note\n"
        "# end\n"
        "x = {a, b,}\n"
        "\n"
        "# head\n"
        "class S:  # c\n"
        "    ...\n"
        "\n"
        "\n"
        "\n"
        "value_name_long_long_long = another_long_single_name_that_is_very_long_indeed_and_lo"
        "nger_xxxxxxxxxx  # comment\n"
        "\n"
        "w = ('ssss'  # why\n"
        " and 'a' 'bccc')\n"
        "x = y[a,]\n"
        "\n"
        "from m import (a,)\n"
        "\n"
        "x = y[a:b, c + 1 :]\n"
        "\n"
        "(x  # c\n"
        ") = 's'\n"
        "w = (not beta(gamma_long_name_here.bb, **beta, x.call(x)\n"
        "# tail comment\n"
        ")  # why\n"
        " and [i for i in 'a' 'bccccccccccccccccc' if i])\n"
        "x = 1\n"
        "'  spaced text  '\n"
        "\n"
        "b'  doc  '\n"
        "\n"
    ),
    "a comment at the end of the file": "# head\n\n# after blank\nf(a, b)\n# end\n",
    "blank lines then a comment at the end": "a + b\n\n\n\n\n\n# end\n",
    "where the walk starts lines": (
        "# head\n"
        "\n"
        "# after blank\n"
        "f(a, b)\n"
        "# end\n"
        "f(beta,\n"
        "# standalone 0\n"
        "obj.attr)\n"
        "# head\n"
        "\n"
        "# after blank\n"
        "z = -x**2\n"
        "@dec  # note\n"
        "def f0(a, b=(1)):\n"
        "    '''one'''\n"
        "    a | b\n"
        "# dedented comment\n"
        "# standalone\n"
        "s = {(a)}\n"
        "\n"
        "a + b\n"
        "\n"
        "\n"
        "\n"
        "\n"
        "\n"
        "# end\n"
        "# head\n"
        "1.5E3  # note\n"
        "\n"
        "x = [\n"
        "    x,\n"
        "]\n"
        "if a:\n"
        "    pass\n"
        "elif (b):\n"
        "    pass\n"
        "\n"
        "f()\n"
        "if a:\n"
        "    ...\n"
        "\n"
        "def f():\n"
        "    ...\n"
        "    # comment\n"
        "\n"
        '"""Module doc."""\n'
        "class S:  # c\n"
        "    ...\n"
        "\n"
        '"""Module doc."""\n'
        "@dec(a)\n"
        "@dec\n"
        "def f0(a, b=(1)):  # note\n"
        "    while x:\n"
        "        a + b  # c\n"
        "\n"
        "\n"
        "\n"
        "        # standalone\n"
        "        x[a:b, c] = y[d + 1 :]  # note\n"
    ),
    "what the tree normalisation changes": (
        '"""Module doc."""\n'
        "with a as b, (c) as d:\n"
        '    """Doc string.\n'
        "\n"
        "       more.\n"
        '    """\n'
        "    (a) = 1\n"
        "\n"
        "\n"
        "\n"
        "\n"
        "\n"
        "# end\n"
        "1.5E3  # note\n"
        "\n"
        "def g():\n"
        "    return obj.attr if c else obj.method(a) or alpha_value if c else obj.attr(key_0="
        "beta == alpha_value\n"
        "    # tail comment\n"
        "    )\n"
        "first_value_name_long_long_long ^ second_value_name_long_long_long ^ third_value_nam"
        "e_long_long_long_xxx\n"
        "\n"
        "x = 1j.real\n"
        "\n"
        "x = 0x1F.real\n"
        "\n"
        "x = 1(a)\n"
        "\n"
        "def f(a: (x)):\n"
        "    pass\n"
        "# standalone\n"
        "s = {(a)}  # note\n"
        "\n"
        "# end\n"
        "y = [(1)]\n"
        "for 's' in (x):\n"
        "    pass\n"
        "del some_function_name(delta, beta(lambda q, *w: beta), 'a' 'bcccccccccccccccc', lam"
        "bda q, *w: obj.attr(delta, mod.sub.fn)), beta\n"
        "try:\n"
        "    pass\n"
        "except (E):\n"
        "    pass\n"
        "\n"
        "with (1):\n"
        "    pass\n"
        "while (1):\n"
        "    pass\n"
        "def g():\n"
        "    return (x)\n"
        "from m import (n)\n"
        "if a:\n"
        "    pass\n"
        "elif (b):\n"
        "    pass\n"
        "\n"
    ),
    "delimiter priorities and scopes": (
        "result = function_name(value for value, other in pairs_of_value_longer_names_long_lo"
        "ng_name if other, second_argument_value_longer_name_x)\n"
        'value = "first implicitly concatenated string literal" "second implicitly concatenat'
        'ed string literal" == other\n'
        "result = function_name(first_value_longer_name_name + second_value_longer_name_name "
        "| third_value_longer_name_name + fourth_value_longer_name_name + fifth_value_longer_"
        "name)\n"
        "result = function_name(first_value_longer_name_name_here_and_a_bit_more * second_val"
        "ue_longer_name_name_here_and_a_bit_more + third_value_longer_name_name_here_and_a_bi"
        "t_more * fourth_value_longer_name_x)\n"
        "result = function_name(first_value_longer_name_name(a) ** second_value_longer_name_n"
        "ame(b) * third_value_longer_name_name(c) ** fourth_value_longer_name_name(dd))\n"
        "def g():\n"
        "    return obj.method(a) not in [gamma_long_name_here.call(x), obj.method(a)(**gamma"
        "_long_name_here, alpha_value, mod.sub.fn), delta.bb]\n"
        "result = function_name(first_value_longer_name_name_here_and_a_bit_more_long_long is"
        " not second_value_longer_name_name_here_and_a_bit_more_long_long_long_long_name)\n"
        "assert some_function_name(argument_number_one, argument_number_two) in collection_of"
        '_values, "message text"\n'
        "result = function_name(first_value_longer_name_name_here_and_a_bit_more_long_long is"
        " second_value_longer_name_name_here_and_a_bit_more_long_long_long_long_long_name)\n"
        "result = {key_value: transform(value_value) for key_value, value_value in dictionary"
        "_of_values.items() if key_value}\n"
        "x = not (beta(key_0=gamma_long_name_here,\n"
        "# tail comment\n"
        ") or [obj.method(a), obj.method(a)] == obj.attr)\n"
        "result = function_name(-first_value_longer_name_name_here_and_a_bit_more_long + -sec"
        "ond_value_longer_name_name_here_and_a_bit_more_long - -third_value_longer_name_name_"
        "long_x)\n"
        "result = [element_value_longer_name for element_value_longer_name, other_value_longe"
        "r_name in zip(first_collection_of_value_longer_names, second_collection_xx)]\n"
        "if (lambda q, *w: obj.attr):\n"
        "    pass\n"
        "result = function_name(lambda first_argument,\n"
        "# comment\n"
        "second_argument: first_argument + second_argument, other)\n"
    ),
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippets_are_black_byte_for_byte(name: str) -> None:
    """By statement (the path a script takes) and through the whole tree (where the scanner
    refuses a file), so the tree path's rules are checked on every snippet too."""
    source = SNIPPETS[name]
    for mode in (PY3_FORMAT, PY2_FORMAT):
        black = format_with_black(source, mode)
        assert _fast(source, mode) == black
        assert pyformat._format_tree(source, mode.py2) == black


def test_what_it_does_not_reproduce_goes_to_black() -> None:
    for source in (
        "x = 1;y = 2\n",
        "def f(): return 1\n",
        "def f() -> int:\n    pass\n",
        "def f():\n    ...\n",
        "if x:\n        a = 1\n    b = 2\n",  # a dedent to no enclosing block's column
        "class A:\n    ...\n",
        "x\t= 1\n",
        "match x:\n    case 1:\n        pass\n",
        "for x in (lambda: y):\n    pass\n",
        "def function_name_long_enough_to_split(argument: dict[str, tuple[int, int]] = some_default"
        "_value_long):\n    pass\n",
    ):
        with pytest.raises(pyformat.Unsupported):
            _fast(source, PY3_FORMAT)
        assert format_source(source) == format_with_black(source)


# No valid Python: black refuses each, so the formatter must too (a template bug then shows as
# black's error), though its statement path never parses
_INVALID = [
    "if x:\n",
    "if x:\ny = 1\n",
    "def f():\n    if x:\n    y = 1\n",
    "if x:\n    # only a comment\ny = 2\n",
    "while x:\n    # only a comment\n",
    "x = = 1\n",
    "x = 1 +\n",
    "x = 1 2\n",
    "x = f(a b)\n",
    "x = [i for i in]\n",
    "x = {1: }\n",
    "x = f(**)\n",
    "x = a[]\n",
    "x = not\n",
    "x.\n",
    "import\n",
    "from x import\n",
    "global\n",
    "raise from x\n",
    "for in x:\n    pass\n",
    "class:\n    pass\n",
    "with:\n    pass\n",
    "else:\n    pass\n",
    "if x:\n    pass\nelif:\n    pass\n",
    "if x:\n    pass\nexcept:\n    pass\n",
    "try:\n    pass\n",
    "try:\n    pass\nelse:\n    pass\n",
    "try:\n    pass\nx = 1\n",
    "def f():\n    try:\n        pass\n",
    "if a:\n    try:\n        pass\nelse:\n    pass\n",
    "for x in y:\n    pass\nelse:\n    pass\nfinally:\n    pass\n",
    "def f():\n    pass\n    else:\n        pass\n",
    "@decorator\n",
    "@decorator\nx = 1\n",
    "def f():\n    @decorator\n    x = 1\n",
    "@decorator\nif x:\n    pass\n",
    "class A:\n    @decorator\ndef f():\n    pass\n",
    "if a:\n    if b:\n        pass\nc = 1\nif d:\n    else:\n        pass\n",
]
# compound statements and decorators of every shape, which the statement path takes
_VALID_BLOCKS = [
    "if a:\n    pass\nelif b:\n    pass\nelif c:\n    pass\nelse:\n    pass\n",
    "try:\n    pass\nexcept A:\n    pass\nexcept B as e:\n    pass\nelse:\n    pass\n"
    "finally:\n    pass\n",
    "try:\n    pass\nfinally:\n    pass\n",
    "for x in y:\n    if x:\n        break\nelse:\n    pass\n",
    "while x:\n    try:\n        pass\n    except E:\n        continue\nelse:\n    pass\n",
    "if a:\n    for x in y:\n        pass\n    else:\n        pass\nelse:\n    pass\n",
    "@a\n# a comment\n@b(c)\ndef f():\n    pass\n",
    "class A:\n    @property\n    def f(self):\n        return 1\n",
    "if a:\n    pass\n    # a comment in the block\nelse:\n    pass\n",
    "try:\n    try:\n        pass\n    finally:\n        pass\nexcept E:\n    pass\n",
]


@pytest.mark.parametrize("source", _INVALID)
def test_what_black_refuses_the_formatter_refuses(source: str) -> None:
    with pytest.raises(black.InvalidInput):
        format_with_black(source)
    for memo in (None, {}):
        with pytest.raises(pyformat.Unsupported):
            pyformat.format_python(source, False, memo)
    with pytest.raises(black.InvalidInput):
        format_source(source)


@pytest.mark.parametrize("opening, closing", [("(", ")"), ("f(", ")"), ("[", "]"), ("a[", "]")])
def test_brackets_nested_past_the_parser_s_recursion_go_to_black(
    opening: str, closing: str
) -> None:
    """Python takes 199 levels; the parser recurses about 13 frames a level."""
    source = "x = " + opening * 150 + "1" + closing * 150 + "\n"
    with pytest.raises(pyformat.Unsupported):
        pyformat.format_python(source)
    assert format_source(source) == format_with_black(source)


@pytest.mark.parametrize("source", _VALID_BLOCKS)
def test_blocks_and_decorators_stay_on_the_statement_path(source: str) -> None:
    assert pyformat._format_by_statement(source, False) == format_with_black(source)


# A call black splits one argument per line: it ends `*rest,` only where the file lets black
# infer target versions that allow a comma after *args.
_STARRED_CALL = (
    "result = function_name(argument_one_long_name_abcdefghij, argument_two_long_name_abcdefgh"
    "ijkl, *the_rest_of_the_arguments)\n"
)
_NEWER_VERSIONS = (
    # refused by the scanner (the one-line fast path does not parse)
    "def f[T](x):\n    pass\n",
    "class C[T]:\n    pass\n",
    "class C [T](B):\n    x = 1\n",
    "type X = int\n",
    "type X[T] = list[T]\n",
    "lazy import x\n",
    "lazy from a import b\n",
    "try:\n    pass\nexcept A, B:\n    pass\n",
    "try:\n    pass\nexcept f(a), B:  # (\n    pass\n",
    # refused where parsed (_check_features, the parser or the tokenizer)
    "f(*a,)\n",
    "f(\n    a,\n    **b,\n)\n",
    "def g(\n    a,\n    *b,\n):\n    pass\n",
    "def f():\n    return *a, b\n",
    "def f():\n    yield 1, *[\n        a,\n    ]\n",
    "@a[0]\ndef f():\n    pass\n",
    "@a.b[0](\n    c,\n)\ndef f():\n    pass\n",
    "@(a)\ndef f():\n    pass\n",
    "@(a).b\ndef f():\n    pass\n",
    "@a[0].b\ndef f():\n    pass\n",
    "@a().b\ndef f():\n    pass\n",
    "@a.b()()\ndef f():\n    pass\n",
    "x = {**a for a in b}\n",
    "x = [\n    *a for a in b\n]\n",
    "from __future__ import annotations\n",
    "with (open(a) as b, open(c) as d):\n    pass\n",
    "def f(a, /, b):\n    pass\n",
    "if (n := 10) > 5:\n    pass\n",
    "x[*a]\n",
    "try:\n    pass\nexcept* E:\n    pass\n",
    "match x:\n    case 1:\n        pass\n",
)
_UNDERSCORED_NUMBERS = ("x = 0x_ff\n", "x = 1e1_0\n", "x = .5_0\n", "x = 1.5_0\n", "x = 0b1_0\n")
_SAME_VERSIONS = (
    "type = 1\n",
    "type(x)\n",
    "lazy.x = 1\n",
    "x if y else z\n",
    "x not in y\n",
    "try:\n    pass\nexcept (A, B):  # a, b\n    pass\n",
    "try:\n    pass\nexcept E(','):\n    pass\n",
    "class C(B[T]):\n    pass\n",
    "x = conv1_0 + a.b1_2\n",
    "@a.b.c(\n    d,\n)\ndef f():\n    pass\n",
    "@a.b\ndef f():\n    pass\n",
    "from __future__ import division\n",
    "from typing import (\n    annotations,\n)\n",
)
# an f-string lets black add the comma too: the scanner must see it, on a one-line statement
# or a longer one, with any prefix
_F_STRINGS = (
    'x = f"{a}"\n',
    "x = Rf'{a}' + b\n",
    'x = [  # c\n    fR"{a}",\n]\n',
    'x = g(\n    "a",\n    F"{b}",\n)\n',
)


def _starred_call_after(head: str, comma: bool) -> tuple[str, str]:
    """head, then _STARRED_CALL: (the source, black's output, which ends `*rest` with a comma
    or without one as `comma` says)."""
    source = head + _STARRED_CALL
    black = format_with_black(source)
    ending = "    *the_rest_of_the_arguments,\n" if comma else "    *the_rest_of_the_arguments\n"
    assert ending in black, head
    return source, black


@pytest.mark.parametrize("head", _NEWER_VERSIONS)
def test_what_makes_black_infer_newer_versions_goes_to_black(head: str) -> None:
    """black adds a comma after *args when a statement anywhere in the file needs a newer
    Python (its inferred target versions then all allow one). Such a file goes to black: the
    one-line fast path would take some of those statements without parsing them, so the
    scanner refuses them; the others are refused where they are parsed."""
    source, black = _starred_call_after(head, comma=True)
    with pytest.raises(pyformat.Unsupported):
        _fast(source, PY3_FORMAT)
    assert format_source(source) == black


@pytest.mark.parametrize("head", _UNDERSCORED_NUMBERS)
def test_every_underscored_number_is_seen(head: str) -> None:
    """The statement path looks for underscores in numbers by a pattern; the tree sees the
    numbers themselves and formats the file."""
    source, black = _starred_call_after(head, comma=True)
    with pytest.raises(pyformat.Unsupported, match="underscores"):
        pyformat._format_by_statement(source, False)
    assert _fast(source, PY3_FORMAT) == black
    assert pyformat.format_python(source, False, {}) == black


@pytest.mark.parametrize("head", _F_STRINGS)
def test_a_file_with_an_f_string_ends_starred_calls_with_a_comma(head: str) -> None:
    source, black = _starred_call_after(head, comma=True)
    assert pyformat._format_by_statement(source, False) == black
    assert pyformat.format_python(source, False, {}) == black


@pytest.mark.parametrize("head", _SAME_VERSIONS)
def test_what_looks_alike_stays_on_the_statement_path(head: str) -> None:
    source, black = _starred_call_after(head, comma=False)
    assert pyformat._format_by_statement(source, False) == black
    assert pyformat.format_python(source, False, {}) == black


# Statements of one shape_key are formatted once and the others filled in: pairs that differ
# only where black's decisions may differ (a keyword of the same length, a number, where the
# lines break around a comment) must not share a shape.
_SHAPE_PAIRS = (
    ("x = [a for b in c if d]", "x = [a for b in c or d]"),
    ("x = f(1)", "x = f()"),
    (  # split at the `or` (logic binds looser than a comparison), wherever it is
        "x = first_operand_long_name_aaaaaaaaaaaaa or second_operand_long_name_bbbbbbbbbbb"
        " in third_operand_cdef",
        "x = first_operand_long_name_aaaaaaaaaaaaa in second_operand_long_name_bbbbbbbbbbb"
        " or third_operand_cdef",
    ),
    ("x = [  # c\n    a]", "x = [\n    # c\n    a]"),
)


@pytest.mark.parametrize("first, second", _SHAPE_PAIRS)
def test_statements_of_other_shapes_are_formatted_afresh(first: str, second: str) -> None:
    isolated._SHAPES.clear()
    isolated.format_statement(first, 0, "x", False, frozenset())
    lines, _ = isolated.format_statement(second, 0, "x", False, frozenset())
    assert "".join(lines) == format_with_black(second + "\n")


def test_a_statement_opening_with_a_string_is_formatted_where_it_is_no_docstring() -> None:
    """The full formatter gets such a statement after a `pass` (first in a file, black would
    take it for the docstring)."""
    text = "'{}'.format(lambda: x)"
    isolated._SHAPES.clear()  # formatted afresh, not filled into a shape seen before
    lines, _ = isolated.format_statement(text, 0, "'", False, frozenset())
    assert lines == ['"{}".format(lambda: x)\n']
    source = "x = 1\n" + text + "\n"
    assert _fast(source, PY3_FORMAT) == format_with_black(source)


def test_the_scanner_refuses_a_bracket_closed_before_it_opened() -> None:
    with pytest.raises(pyformat.Unsupported, match="unbalanced brackets"):
        scan("x = a)  # c\ny = (b\n")


def test_the_scanner_refuses_an_indent_that_opens_no_block() -> None:
    with pytest.raises(pyformat.Unsupported, match="an indented line that does not open a block"):
        scan("x = 1\n    y = 2\n")


def _straddling_lines(rng: random.Random) -> str:
    """Statements of the templates' shapes at random depths, with names long enough to put
    them just under or just over the line length."""
    shapes = (
        "{a} = nn.{b}({n}, {n}, kernel_size=({n}, {n}), stride=({n}, {n}), {c}={s}, bias=False)",
        "{a} = layers.{b}({n}, ({n}, {n}), strides=({n}, {n}), name={s}, {c}={d})({d})",
        "{a}.{b}({s}, type={c}, default={d}, help={s})",
        "return {a}({b}.{c}({d}), {c}={n}, {b}=[{s}, {s}, {n}])",
        "{a} = {{{s}: {b}, {s}: {c}({d}) if {d} else None, {s}: [{n}, {n}]}}",
        "{a} = {b}[{n} : {c} + {n}] + {d}.{c}(({n}, {n}), {s} % ({a}, {b}))",
        "if {a} is not None and {b}.{c}({d}) == {s} or not {d}:",
        "print({s} % ({a} + {n}, {b}[-{n}], {c}), file={d})",
    )
    lines, depth = [], 0
    for _ in range(60):
        words = {
            key: "x" * rng.randint(1, 4) + "_" * rng.randint(0, 1) + "y" * rng.randint(1, 30)
            for key in "abcd"
        }
        words["n"] = str(rng.choice((1, 64, 128, 1024)))
        words["s"] = repr("s" * rng.randint(0, 25))
        line = rng.choice(shapes).format(**words)
        lines.append("    " * depth + line)
        if line.endswith(":"):
            depth += 1
            lines.append("    " * depth + "pass")
        elif depth and rng.random() < 0.3:
            depth -= 1
        if rng.random() < 0.15:
            lines.append("    " * depth + "def f():")
            depth += 1
            lines.append("    " * depth + "pass")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(4))
def test_lines_near_the_limit_are_black_byte_for_byte(seed: int) -> None:
    source = _straddling_lines(random.Random(seed))
    assert _fast(source, PY3_FORMAT) == format_with_black(source, PY3_FORMAT)


def test_both_tiers_agree() -> None:
    """The statement-by-statement path and the whole-tree one write the same bytes."""
    source, mode = _sources(ROOT / "examples" / "mnist_cnn.dl")["pytorch"]
    assert pyformat._format_by_statement(source, mode.py2) == pyformat._format_tree(
        source, mode.py2
    )


def test_compiling_imports_neither_black_nor_numpy(tmp_path: Path) -> None:
    """Nor what only other commands use (runtimes and their subprocesses, diffs)."""
    unused = ("black", "numpy", "dlspec.runtimes", "subprocess", "difflib")
    code = (
        "import sys; from dlspec.cli import main\n"
        f"main(['compile', {str(ROOT / 'examples' / 'mnist_cnn.dl')!r}, '--target', 'all',"
        f" '--out-dir', {str(tmp_path)!r}])\n"
        f"print(sorted(m for m in {unused!r} if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]", run.stderr


def test_a_memo_shared_across_specs_writes_the_goldens() -> None:
    """Statements remembered from other scripts (a memo filled by every example's five, in
    turn) give each script's golden bytes, and a second pass formats nothing anew."""
    memo: dict[tuple, tuple] = {}
    sizes = []
    for _ in range(2):
        for spec in EXAMPLES:
            model_name = build_file(str(spec)).model.name
            for target, (source, mode) in _sources(spec).items():
                golden = (ROOT / "generated" / target / f"{model_name}_{target}.py").read_text(
                    encoding="utf-8"
                )
                assert pyformat.format_python(source, mode.py2, memo) == golden, spec.name
        sizes.append(len(memo))
    assert sizes[0] == sizes[1] > 5000


def test_the_memo_is_what_is_written() -> None:
    """A remembered statement is used as it stands (so the test above can fail): a poisoned
    entry shows in the output."""
    source = "x = f( 1 )\ny = g( 2 )\n"
    memo: dict[tuple, tuple] = {}
    assert pyformat.format_python(source, False, memo) == "x = f(1)\ny = g(2)\n"
    key = next(key for key in memo if key[0] != segments.SEGMENT and key[0].startswith("y"))
    memo[key] = (("y = poisoned\n",), None)
    source = "z = 3\ny = g( 2 )\n"  # a segment not remembered: read statement by statement
    assert pyformat.format_python(source, False, memo) == "z = 3\ny = poisoned\n"


# ---- segments: a memo of top-level defs and classes, formatted --------------------------------


def _items(items: list) -> list[tuple]:
    return [
        (i.text, i.depth, i.before, i.comment, i.docstring, i.first_word, i.multiline, i.header)
        for i in items
    ]


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_segments_scan_into_the_whole_files_statements(spec: Path) -> None:
    """Cut into segments, each scanned on its own, a script is the statements (text, depth,
    blank lines before, kind) the whole file scans into."""
    for target, (source, _) in _sources(spec).items():
        whole, f_strings = scan(source)
        pieces = segments.split(source.lstrip())
        assert "".join(pieces) == source.lstrip()
        assert len(pieces) > 10, target
        scanned = [scan_segment(piece, index == 0) for index, piece in enumerate(pieces)]
        assert _items([i for items, _ in scanned for i in items]) == _items(whole), target
        assert any(found for _, found in scanned) == f_strings


SEGMENT_SNIPPETS = {
    "comment just above a def": "x = 1\n# about f\ndef f():\n    return 1\n",
    "comments and decorators": (
        "x = 1\n\n# one\n\n# two\n@dec\n# between\n@dec2(a, b)\ndef f():\n    pass\n"
    ),
    "indented comment closing a block": "def f():\n    x = 1\n    # still f's\n\ndef g():\n    pass\n",
    "comment at column 0 then indented": (
        "def f():\n    x = 1\n# top\n    # indented\n\n\n\ndef g():\n    pass\n"
    ),
    "a block ending in a comment": "def f():\n    pass\n# trailing\ndef g():\n    pass\n",
    "class with only a docstring": 'class A:\n    """Doc."""\ndef g():\n    pass\nx = 1\n',
    "nested defs": (
        "def f():\n    def inner():\n        pass\n    return inner\nx = 2\ndef g():\n"
        "    class B:\n        pass\n    y = 1\n"
    ),
    "a def inside a docstring": (
        'def real():\n    """Doc.\n\ndef not_code():\n    pass\n\nclass Nope:\n"""\n    return 1\n'
        'y = \'"""\'\ndef after():\n    pass\n'
    ),
    "a decorator made of a matrix product": "x = (a\n@b)\ndef f():\n    pass\n",
    "module docstring and comments": (
        '# header\n"""Module."""\n# note\nimport os\ndef f():\n    """Doc."""\n'
    ),
    "f-string in a later segment": (
        "def f(*args):\n    return g(*args)\ndef h():\n    return f'{x}'\n"
    ),
}


def _shuffled_scripts(seed: int) -> str:
    """The head of one example script, then the other segments of several, shuffled."""
    rng = random.Random(seed)
    pieces = []
    for spec in EXAMPLES[:4]:
        for source, mode in _sources(spec).values():
            if not mode.py2:
                pieces.extend(segments.split(source.lstrip())[1:])
    first = segments.split(_sources(EXAMPLES[0])["pytorch"][0].lstrip())[0]
    return first + "".join(rng.sample(pieces, 25))


def test_remembered_segments_are_black_in_any_context() -> None:
    """A segment's remembered text (and its blank lines, decided again each time) is black's
    wherever it stands: snippets whose blank lines hang on what is before them, and example
    segments shuffled, formatted through one memo (filled, then read back in other orders)."""
    memo: dict[tuple, tuple] = {}
    sources = [*SEGMENT_SNIPPETS.values(), *(_shuffled_scripts(seed) for seed in range(3))]
    for _ in range(2):
        for source in sources:
            assert pyformat.format_python(source, False, memo) == format_with_black(source)
        sources.reverse()
    assert sum(1 for key in memo if key[0] == segments.SEGMENT) > 50


def test_split_cuts_only_between_top_level_statements() -> None:
    source = (
        'x = """\n\ndef not_code():\n    pass\n"""\ndef real():\n    return """a\n'
        'class Nope:\n"""\ny = \'"""\'\ndef after():\n    pass\n'
    )
    assert [piece.split("\n")[0] for piece in segments.split(source)] == [
        'x = """',
        "def real():",
        "def after():",
    ]
    assert segments.split(SEGMENT_SNIPPETS["a def inside a docstring"])[1] == (
        "def after():\n    pass\n"
    )
    source = "x = 1\n\n\n# about f\n@dec\ndef f():\n    pass\ny = \\\ndef g(): pass\n"
    assert segments.split(source) == ["x = 1\n", source[6:]]
    source = '"""Module.\n\ndef not_code():\n"""\n\n\ndef f():\n    pass\n'
    cut = source.index("\n\n\ndef f") + 1  # above the blank lines; the string starts at 0
    assert segments.split(source) == [source[:cut], source[cut:]]
    source = "# about f\n\ndef f():\n    pass\n\n"
    assert segments.split(source) == [source]  # nothing above the comment to cut from


def test_segments_remember_their_heads() -> None:
    """A segment's head (comments, decorators, its def line) is decided again where it stands;
    a segment ending in a comment is not remembered (the placer points back at it)."""
    source = "x = 1\n# about f\n@dec\ndef f():\n    return 1\ndef g():\n    pass\n# the end\n"
    memo: dict[tuple, tuple] = {}
    assert pyformat.format_python(source, False, memo) == format_with_black(source)
    heads = {
        key[1]: [len(entry[0]) for _, entry in by_features]
        for key, (_, by_features) in memo.items()
        if key[0] == segments.SEGMENT
    }
    pieces = segments.split(source)
    assert [heads.get(segments.digest(piece)) for piece in pieces] == [[0], [3], None]


def test_a_remembered_segment_is_what_is_written() -> None:
    """The segment memo is read (so the shared-memo test can fail): a poisoned entry shows."""
    source = "x = 1\ndef f():\n    return g( 2 )\n"
    memo: dict[tuple, tuple] = {}
    assert pyformat.format_python(source, False, memo) == "x = 1\n\n\ndef f():\n    return g(2)\n"
    key = (segments.SEGMENT, segments.digest("def f():\n    return g( 2 )\n"), False)
    flags, by_features = memo[key]
    (features, (head, text, end)), *_ = by_features
    memo[key] = (flags, ((features, (head, text.replace("g(2)", "poisoned"), end)),))
    assert (
        pyformat.format_python(source, False, memo) == "x = 1\n\n\ndef f():\n    return poisoned\n"
    )


def test_fuzzed_specs_through_a_shared_memo_are_black() -> None:
    memo: dict[tuple, tuple] = {}
    for _ in range(2):
        for name, source, mode in _fuzzed_sources():
            try:
                fast = pyformat.format_python(source, mode.py2, memo)
            except pyformat.Unsupported:
                continue
            assert fast == format_with_black(source, mode), name
