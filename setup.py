"""setuptools' build with one step added: dlspec's Jinja templates compiled into the package.

setup.cfg holds the metadata; this only extends build_py. A wheel's build writes, next to the
templates it copies, their compiled form (dlspec.codegen.templating.precompile, imported from the
source tree: it needs Jinja alone), as an install writes Python's bytecode: the first compile after
an install reads them instead of compiling every template (0.1 s). An editable install leaves
that to `make venv`, which compiles them in the checkout."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithCompiledTemplates(build_py):
    """build_py, then the templates in the build folder compiled."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        sys.path.insert(0, str(HERE))
        from dlspec.codegen.templating import precompile

        precompile(Path(self.build_lib) / "dlspec" / "templates")


setup(cmdclass={"build_py": BuildWithCompiledTemplates})
