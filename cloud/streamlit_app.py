"""Entry point for Streamlit Community Cloud: the app in hosted mode (tighter bounds for many users).

Community Cloud reads cloud/requirements.txt (next to this file), which keeps torch to its CPU build.
"""
import os
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("EMBEDVIZ_HOSTED", "1")
sys.path.insert(0, str(ROOT))
if __name__ == "__main__":  # training processes import this file as "__mp_main__": no page there
    runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
