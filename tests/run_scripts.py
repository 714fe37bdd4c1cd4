"""Run many generated scripts in ONE interpreter: python run_scripts.py JOBS.json RESULTS.json.

JOBS.json is a list of {"id": str, "script": path, "argv": [str, ...]}. Each script is loaded as a
module under a name of its own and its main(argv) called; RESULTS.json maps each id to
{"ok": bool, "seconds": float, "error": traceback text or ""}, rewritten after every job so a
crash of the interpreter still leaves the results so far. Standard library only: it runs in each
target's runtime, which need not have dlspec installed.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import sys
import time
import traceback
from types import ModuleType
from typing import Any


def load(path: str, index: int) -> ModuleType:
    """The script at `path` as a fresh module."""
    name = f"dlspec_generated_{index}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def forget(module: ModuleType) -> None:
    """Drop a script's module and whatever global state its framework keeps between models."""
    keras = getattr(module, "keras", None)
    if keras is not None:
        keras.backend.clear_session()
    sys.modules.pop(module.__name__, None)
    gc.collect()


def run(job: dict[str, Any], index: int) -> dict[str, Any]:
    """Load one script and call its main(argv); an exception or SystemExit is a failure."""
    start = time.perf_counter()
    module = None
    try:
        module = load(job["script"], index)
        module.main(job["argv"])
        ok, error = True, ""
    except (Exception, SystemExit):  # a script's SystemExit is a failure to report too
        ok, error = False, traceback.format_exc()
    finally:
        if module is not None:
            forget(module)
    return {"ok": ok, "seconds": time.perf_counter() - start, "error": error}


def main(argv: list[str]) -> int:
    jobs_path, results_path = argv
    with open(jobs_path, encoding="utf-8") as f:
        jobs = json.load(f)
    results: dict[str, Any] = {}
    for index, job in enumerate(jobs):
        results[job["id"]] = run(job, index)
        with open(results_path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
