"""Browser tests: a live server driven through Chromium (see conftest.py)."""
