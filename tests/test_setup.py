"""scripts/check_setup.py: what `make` checks before anything slow (Python version, a busy port)."""
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_setup.py"


def run(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([python, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_this_interpreter_and_a_free_port_pass_silently():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run("--port", str(port))
    assert out.returncode == 0 and out.stdout == "" and out.stderr == ""


def test_a_busy_port_is_reported_with_the_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = run("--port", str(port))
    assert out.returncode == 1
    assert f"Port {port} is already in use" in out.stderr
    assert f"make app PORT={port + 1}" in out.stderr


def test_an_unsupported_python_names_the_supported_versions(monkeypatch, capsys):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import check_setup
    finally:
        sys.path.remove(str(SCRIPT.parent))
    monkeypatch.setattr(check_setup, "SUPPORTED", ((3, 99),))
    assert check_setup.main([]) == 1
    err = capsys.readouterr().err
    assert "needs Python 3.99" in err and "make app PYTHON=python3.11" in err
