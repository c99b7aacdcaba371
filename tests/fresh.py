"""One fresh interpreter for the tests that need one, started once per test process: it imports the
core modules one by one (noting which import first brought in a module that must wait for the UI or a
projection), then draws one projection, whose bytes must equal those drawn in the test process."""
from __future__ import annotations

import functools
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import embedviz

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted(m.name for m in pkgutil.iter_modules(embedviz.__path__) if m.name != "ui")
FORBIDDEN = ("streamlit", "umap", "numba", "pynndescent")  # the UI; umap's stack until a map is drawn

SCRIPT = f"""
import hashlib, importlib, json, sys
blamed = {{}}
for name in {CORE!r}:
    importlib.import_module("embedviz." + name)
    new = [m for m in {FORBIDDEN!r} if m in sys.modules and not any(m in b for b in blamed.values())]
    if new:
        blamed[name] = new
from embedviz.projection import project
from tests.test_projection import blobs
print(json.dumps({{"blamed": blamed, "projection_sha256": hashlib.sha256(project(blobs()[0]).xy.tobytes()).hexdigest()}}))
"""


@functools.cache
def report() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
