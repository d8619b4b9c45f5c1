"""docs/cli.md is generated from `--help` and must be current; the READMEs keep their promises."""

from __future__ import annotations

from pathlib import Path

import typer

from ollama_tune.cli import app
from ollama_tune.cli._docs import render_cli_docs

ROOT = Path(__file__).resolve().parents[2]


def test_docs_cli_md_is_current() -> None:
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == render_cli_docs(), "docs/cli.md is stale: run `make docs`"


def test_every_command_has_a_section() -> None:
    text = render_cli_docs()
    root = typer.main.get_command(app)
    for name in root.commands:  # type: ignore[attr-defined]
        assert f"## `ollama-tune {name}" in text
    assert "Usage: ollama-tune run" in text and "--check" in text


def test_readmes_open_with_the_two_setup_commands() -> None:
    for name in ("README.md", "README.ja.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        first_block = text.split("```bash", 1)[1].split("```", 1)[0]
        commands = [ln.split("#")[0].strip() for ln in first_block.strip().splitlines()]
        assert commands == ["make demo", "make test"], name
        for topic in ("accelerate launch", "ollama-tune recommend", "TEMPLATE", "QLoRA"):
            assert topic in text, f"{name} lacks {topic}"
