"""dlspec's one Jinja environment: the templates' loader and options, the compiled templates kept
on disk, the `tojson` filter. `precompile` writes the compiled templates into the package, as an
install writes Python's bytecode (dlspec.codegen.shipped calls it: a wheel's build, make venv,
make generate)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import jinja2

from dlspec.codegen.files import write_bytes_atomic

# the folder, inside the templates folder, of the compiled templates an install ships
COMPILED = "__jinja__"


class TemplateBytecode(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates kept on disk, as Python keeps bytecode: compiling dlspec's
    templates takes a tenth of a second, loading them a hundredth. An entry holds the template
    source's hash (Jinja's check: an edited template is compiled anew); a cache that cannot be
    read or written (read-only home, damaged entry) is skipped, never an error. What the user's
    cache lacks is read from `shipped`, the compiled templates the install wrote (by template
    name; the same checks: another Python's or an edited template's entry is a miss)."""

    def __init__(self, directory: str, shipped: Optional[Path] = None) -> None:
        super().__init__(directory)
        self.shipped = shipped

    def get_bucket(
        self,
        environment: jinja2.Environment,
        name: str,
        filename: Optional[str],
        source: str,
    ) -> jinja2.bccache.Bucket:
        bucket = super().get_bucket(environment, name, filename, source)
        if bucket.code is None and self.shipped is not None:
            try:
                with open(self.shipped / f"{name}.jinja", "rb") as entry:
                    bucket.load_bytecode(entry)
            except Exception:  # noqa: BLE001 - absent or damaged: compiled as usual
                bucket.reset()
        return bucket

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a damaged entry is a miss
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass


def template_bytecode(shipped: Optional[Path] = None) -> TemplateBytecode:
    """The cache of compiled templates, in dlspec's cache folder (one per Jinja version), over
    the ones shipped in `shipped`."""
    from dlspec.codegen.format_cache import cache_root

    return TemplateBytecode(str(cache_root() / f"templates-jinja{jinja2.__version__}"), shipped)


def json_text(value: Any) -> str:
    """Jinja's `tojson` filter's text, made without its Markup wrapper and policy lookups (a
    DenseNet-121 script calls it ~2,000 times): json.dumps with sorted keys, then <, >, & and '
    as \\u00XX escapes, as Jinja writes them."""
    text = json.dumps(value, sort_keys=True)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, escape)
    return text


@jinja2.pass_eval_context
def to_json(eval_ctx: jinja2.nodes.EvalContext, value: Any) -> str:
    """The environment's `tojson` (json_text), called as Jinja's own is (the evaluation context
    first), so templates compiled before it came in stay right."""
    return json_text(value)


def make_environment(
    folder: Path, bytecode: Optional[jinja2.BytecodeCache] = None
) -> jinja2.Environment:
    """An environment on the templates in folder with dlspec's options: strict, trailing
    newline kept, block whitespace trimmed; `tojson` is to_json."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        bytecode_cache=bytecode,
    )
    env.filters["tojson"] = to_json
    return env


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one Jinja environment: dlspec's templates, compiled ones cached on disk."""
    from dlspec.resources import templates_dir

    folder = templates_dir()
    return make_environment(folder, template_bytecode(folder / COMPILED))


def precompile(folder: Path) -> list[str]:
    """Compile every template in folder into folder/COMPILED (each file written atomically);
    the names compiled."""
    env = make_environment(folder)
    checksums = TemplateBytecode(str(folder / COMPILED))
    names = sorted(env.list_templates(extensions=["j2"]))
    for name in names:
        source, filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
        bucket = jinja2.bccache.Bucket(env, name, checksums.get_source_checksum(source))
        bucket.code = env.compile(source, name, filename)
        write_bytes_atomic(folder / COMPILED / f"{name}.jinja", bucket.bytecode_to_string())
    return names
