"""Run many generated scripts in ONE interpreter: python run_scripts.py JOBS.json RESULTS.json.

JOBS.json is a list of {"id": str, "script": path, "argv": [str, ...]}. Each script is loaded as a
module under a name of its own and its main(argv) called; RESULTS.json maps each id to
{"ok": bool, "seconds": float, "error": traceback text or ""}, rewritten after every job so a
crash of the interpreter still leaves the results so far. Standard library only: it runs in each
target's runtime, which need not have dlspec installed; valid Python 2.7 too (the cntk runtime),
hence type comments, no f-strings and pyupgrade's rules off for this file (pyproject.toml).
"""

from __future__ import absolute_import, division, print_function

import gc
import json
import sys
import time
import traceback

clock = getattr(time, "perf_counter", time.time)  # Python 2.7 has no perf_counter


def load(path, index):
    # type: (str, int) -> object
    """The script at `path` as a fresh module."""
    name = "dlspec_generated_%d" % index
    if sys.version_info[0] < 3:
        import imp

        return imp.load_source(name, path)
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def forget(module):
    # type: (object) -> None
    """Drop a script's module and whatever global state its framework keeps between models."""
    keras = getattr(module, "keras", None)
    if keras is not None:
        keras.backend.clear_session()
    sys.modules.pop(getattr(module, "__name__", ""), None)
    gc.collect()


def run(job, index):
    # type: (dict, int) -> dict
    """Load one script and call its main(argv); an exception or SystemExit is a failure."""
    start = clock()
    module = None
    try:
        module = load(job["script"], index)
        module.main(job["argv"])  # type: ignore[attr-defined]
        ok, error = True, ""
    except (Exception, SystemExit):  # a script's SystemExit is a failure to report too
        ok, error = False, traceback.format_exc()
    finally:
        if module is not None:
            forget(module)
    return {"ok": ok, "seconds": clock() - start, "error": error}


def main(argv):
    # type: (list) -> int
    jobs_path, results_path = argv
    with open(jobs_path) as f:
        jobs = json.load(f)
    results = {}  # type: dict
    for index, job in enumerate(jobs):
        results[job["id"]] = run(job, index)
        with open(results_path, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
