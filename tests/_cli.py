"""Run the real `ollama-tune` entry point in-process and capture what a user would see."""

from __future__ import annotations

import pytest

from ollama_tune.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `ollama-tune ARGS...` through `main`, as the shell sees it."""
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err
