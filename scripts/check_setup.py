"""Checks `make` runs before anything slow: the Python version, and (for `make app`) a free port.

Run with the interpreter that will build the venv: `python3 scripts/check_setup.py [--port N]`.
Exits 1 with a message saying what to do; prints nothing when all is well.
"""
from __future__ import annotations

import argparse
import socket
import sys

SUPPORTED = ((3, 11), (3, 12))  # torch 2.13.0's CPU wheel here is for 3.11; Community Cloud runs 3.12


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, help="the port `make app` will serve on")
    args = parser.parse_args(argv)
    version = sys.version_info[:2]
    if version not in SUPPORTED:
        names = " or ".join(f"{major}.{minor}" for major, minor in SUPPORTED)
        print(f"embedviz needs Python {names}; {sys.executable} is {version[0]}.{version[1]}.\n"
              f"Pick one with PYTHON, e.g.  make app PYTHON=python3.11  (then `make clean` if a .venv "
              "was already built with another version).", file=sys.stderr)
        return 1
    if args.port is not None:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", args.port))
            except OSError:
                print(f"Port {args.port} is already in use (another embedviz or Streamlit?). Stop that "
                      f"server, or choose another port:  make app PORT={args.port + 1}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
