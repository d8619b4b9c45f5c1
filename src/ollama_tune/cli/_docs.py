"""Generate docs/cli.md from the `--help` of every command (`make docs`).

The help text is the documentation (as in simonw/llm): one section per command, the help
rendered at a fixed width so the file is byte-stable and a unit test can check it is current.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.testing import CliRunner

WIDTH = "100"
HEADER = """\
# ollama-tune command reference

Generated from `ollama-tune --help` by `make docs` (`python -m ollama_tune.cli._docs >
docs/cli.md`). Do not edit by hand: change the command's help text and run `make docs`.
"""


def _paths(cmd: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # Duck-typed: recent Typer vendors its own click, so isinstance(click.Group) fails.
    out = [prefix]
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.commands):
            sub = cmd.commands[name]
            if not getattr(sub, "hidden", False):
                out += _paths(sub, (*prefix, name))
    return out


def _help(app: typer.Typer, path: tuple[str, ...]) -> str:
    env = {"COLUMNS": WIDTH, "NO_COLOR": "1", "TERM": "dumb", "TERMINAL_WIDTH": WIDTH}
    res = CliRunner().invoke(app, [*path, "--help"], prog_name="ollama-tune", env=env)
    # Rich pads table rows to the full width; trailing spaces only add diff noise.
    return "\n".join(line.rstrip() for line in res.output.strip("\n").splitlines())


def render_cli_docs() -> str:
    """The whole of docs/cli.md as a string."""
    from ollama_tune.cli import app

    root = typer.main.get_command(app)
    parts = [HEADER]
    for path in _paths(root):
        title = " ".join(("ollama-tune", *path))
        parts.append(f"## `{title}`\n\n```text\n{_help(app, path)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render_cli_docs())
