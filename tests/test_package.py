"""The package runs without any UI: no Streamlit, and no umap until a projection is asked for."""
import pkgutil
import subprocess
import sys
from pathlib import Path

import embedviz

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_imports_without_streamlit_or_umap():
    names = [m.name for m in pkgutil.iter_modules(embedviz.__path__) if m.name != "bench"]
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module('embedviz.' + n)\n"
        "print(sorted(m for m in ('streamlit', 'umap', 'numba') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.strip() == "[]"


def test_no_unsafe_loading_anywhere():
    for path in list((ROOT / "embedviz").glob("*.py")) + [ROOT / "app.py"]:
        text = path.read_text()
        assert "pickle.load" not in text, path
        assert "torch.load(" not in text, path
        assert "eval(" not in text.replace("model.eval(", "").replace(".eval()", ""), path
        assert "shell=True" not in text, path
