"""`template show/check` through the CLI, and the one-call `build_ollama_template` API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ollama_tune.cli import template_cmd
from ollama_tune.errors import TemplateError
from ollama_tune.templates._reference import REFERENCE_TEMPLATES
from ollama_tune.templates.source import build_ollama_template, load_chat_template

REF = {r.variant: r.jinja for r in REFERENCE_TEMPLATES}
DOUBLED = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    template_cmd.register(app)
    return app


@pytest.fixture
def hf_dir(tmp_path: Path) -> Path:
    """A tokenizer folder as transformers saves it, special tokens as AddedToken dicts."""
    folder = tmp_path / "model"
    folder.mkdir()
    config = {
        "chat_template": REF["gemma3"],
        "bos_token": {"content": "<bos>", "lstrip": False},
        "eos_token": "<eos>",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_load_chat_template_reads_hf_folder_tokens(hf_dir: Path) -> None:
    src = load_chat_template(hf_dir)
    assert (src.chat_template, src.bos_token, src.eos_token) == (REF["gemma3"], "<bos>", "<eos>")


def test_load_chat_template_falls_back_to_chat_template_jinja(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text('{"eos_token": "<|im_end|>"}', "utf-8")
    (tmp_path / "chat_template.jinja").write_text(REF["smollm2"], encoding="utf-8")
    src = load_chat_template(tmp_path)
    assert src.chat_template == REF["smollm2"] and src.origin.endswith("chat_template.jinja")


def test_folder_without_chat_template_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(TemplateError, match="no chat template found"):
        load_chat_template(tmp_path)


def test_show_prints_template_stops_and_default_system(cli: typer.Typer, tmp_path: Path) -> None:
    jinja = tmp_path / "smol.jinja"
    jinja.write_text(REF["smollm2"], encoding="utf-8")
    res = CliRunner().invoke(cli, ["template", "show", str(jinja), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["family"] == "chatml" and data["variant"] == "smollm2"
    assert data["default_system"].startswith("You are a helpful AI assistant named SmolLM")
    assert "<|im_end|>" in data["stop"] and "{{ .Content }}<|im_end|>" in data["template"]


def test_show_prints_the_template_unwrapped(cli: typer.Typer, tmp_path: Path) -> None:
    from ollama_tune.templates import convert_chat_template

    jinja = tmp_path / "llama.jinja"
    jinja.write_text(REF["llama3.1"], encoding="utf-8")
    res = CliRunner().invoke(cli, ["template", "show", str(jinja)])
    assert res.exit_code == 0, res.output
    assert convert_chat_template(REF["llama3.1"]).template in res.output


def test_check_passes_for_a_model_folder(cli: typer.Typer, hf_dir: Path) -> None:
    res = CliRunner().invoke(cli, ["template", "check", str(hf_dir)])
    assert res.exit_code == 0, res.output
    assert "12/12 conversations identical" in res.output


def test_check_fails_on_a_doubled_system_template_file(cli: typer.Typer, tmp_path: Path) -> None:
    jinja = tmp_path / "chatml.jinja"
    jinja.write_text(REF["chatml"], encoding="utf-8")
    mine = tmp_path / "mine.gotmpl"
    mine.write_text(DOUBLED, encoding="utf-8")
    res = CliRunner().invoke(cli, ["template", "check", str(jinja), "--template", str(mine)])
    assert res.exit_code == 1
    assert "differs" in res.output and "first differing byte at" in res.output
    as_json = CliRunner().invoke(
        cli, ["template", "check", str(jinja), "--template", str(mine), "--json"]
    )
    cases = {c["name"]: c for c in json.loads(as_json.output)["cases"]}
    assert cases["user only"]["ok"] and not cases["system + user"]["ok"]


def test_build_ollama_template_proves_parity_or_raises(tmp_path: Path) -> None:
    built = build_ollama_template(REF["smollm2"], eos_token="<|im_end|>", require_parity=True)
    assert built.parity is not None and built.parity.ok
    assert built.template.default_system is not None

    mine = tmp_path / "mine.gotmpl"
    mine.write_text(DOUBLED, encoding="utf-8")
    with pytest.raises(TemplateError, match="first differing byte at"):
        build_ollama_template(REF["chatml"], template_file=mine)


def test_template_file_without_stops_borrows_the_family_stops(tmp_path: Path) -> None:
    good = tmp_path / "good.gotmpl"
    good.write_text(build_ollama_template(REF["chatml"]).template.template, encoding="utf-8")
    built = build_ollama_template(REF["chatml"], template_file=good)
    assert built.template.stop == ["<|im_start|>", "<|im_end|>"]
    assert built.template.matched == "file"


def test_without_go_only_exact_reference_templates_are_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `go` on PATH
    exact = build_ollama_template(REF["smollm2"])
    assert exact.parity is None and exact.template.matched == "exact"
    with pytest.raises(TemplateError, match="needs the Go toolchain"):
        build_ollama_template(REF["chatml"] + "{# edited #}")
    with pytest.raises(TemplateError, match="needs the Go toolchain"):
        build_ollama_template(REF["smollm2"], require_parity=True)
