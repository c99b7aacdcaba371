"""The package outside embedviz/ui/ runs without any UI: no Streamlit, and no umap until a projection
is asked for; app.py is only an entry point; nothing untrusted is ever unpickled or evaluated."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fresh

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.xdist_group("fresh")  # one worker runs the fresh interpreter for both
def test_core_modules_import_without_streamlit_or_umap():
    # one fresh interpreter imports them one by one; a forbidden module is blamed on the import that
    # first brought it in
    assert len(fresh.CORE) >= 15 and "projection" in fresh.CORE
    assert fresh.report()["blamed"] == {}


def test_only_the_ui_package_imports_streamlit():
    for path in (ROOT / "embedviz").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "embedviz").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_app_is_a_short_entry_point_that_loads_nothing_when_reimported():
    source = (ROOT / "app.py").read_text()
    assert len(source.splitlines()) < 100
    # a training process re-imports app.py as __mp_main__: that must not import the page
    code = ("import runpy, sys\n"
            f"runpy.run_path({str(ROOT / 'app.py')!r}, run_name='__mp_main__')\n"
            "print('streamlit' in sys.modules, 'embedviz.ui.page' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.strip() == "False False"


def test_no_unsafe_loading_anywhere():
    paths = list((ROOT / "embedviz").rglob("*.py")) + [ROOT / "app.py"]
    assert any(p.parent.name == "ui" for p in paths)
    for path in paths:
        text = path.read_text()
        assert "pickle.load" not in text, path
        assert "torch.load(" not in text, path
        assert "eval(" not in text.replace("model.eval(", "").replace(".eval()", ""), path
        assert "shell=True" not in text, path
