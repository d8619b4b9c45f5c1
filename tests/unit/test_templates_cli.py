"""`template show/check` through the CLI, and the one-call `build_ollama_template` API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ollama_tune.cli import template_cmd
from ollama_tune.errors import TemplateError
from ollama_tune.templates import convert_chat_template
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
    assert (data["family"], data["matched"]) == ("chatml", "probed")
    assert data["default_system"].startswith("You are a helpful AI assistant named SmolLM")
    assert data["stop"] == ["<|im_end|>"] and data["end_of_turn"] == "<|im_end|>"
    assert '{{ "<|im_end|>\\n<|im_start|>assistant\\n" }}' in data["template"]
    # `show` proves what it prints: every conversation of the check, rendered by Go.
    cases = data["cases"]
    assert data["ok"] and len(cases) == 12 and all(c["ok"] for c in cases)


def test_show_refuses_an_inexpressible_template_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from _cli import run_cli

    jinja = tmp_path / "counter.jinja"
    jinja.write_text(
        "{% for m in messages %}Turn {{ loop.index }}: {{ m['content'] }}\n{% endfor %}", "utf-8"
    )
    code, out, err = run_cli(capsys, "template", "show", str(jinja))
    assert code == 1 and "Traceback" not in out + err
    assert "change from turn to turn" in out + err and "--template FILE" in out + err


def test_show_of_an_ollama_model_uses_its_own_template_and_stops(
    capsys: pytest.CaptureFixture[str], fake_ollama: Any
) -> None:
    from _cli import run_cli

    smol = convert_chat_template(REF["smollm2"])
    fake_ollama.add_model(
        "smol", template=smol.template, parameters={"stop": ["<|im_end|>", "<|im_start|>"]}
    )
    code, out, err = run_cli(capsys, "template", "show", "ollama:smol", "--json")
    assert code == 0, out + err
    data = json.loads(out)
    assert (data["template"], data["matched"]) == (smol.template, "ollama")
    assert data["stop"] == ["<|im_end|>", "<|im_start|>"] and data["end_of_turn"] == "<|im_end|>"


def test_check_with_an_ollama_models_template_fails_on_another_chat_template(
    capsys: pytest.CaptureFixture[str], fake_ollama: Any, tmp_path: Path
) -> None:
    from _cli import run_cli

    smol = convert_chat_template(REF["smollm2"])
    fake_ollama.add_model("smol", template=smol.template, parameters={"stop": "<|im_end|>"})
    chatml = tmp_path / "chatml.jinja"
    chatml.write_text(REF["chatml"], encoding="utf-8")
    code, out, _ = run_cli(capsys, "template", "check", str(chatml), "--template", "ollama:smol")
    assert code == 1 and "first differing byte at" in out  # SmolLM2 prints a default system
    smol_jinja = tmp_path / "smol.jinja"
    smol_jinja.write_text(REF["smollm2"], encoding="utf-8")
    code, out, _ = run_cli(
        capsys, "template", "check", str(smol_jinja), "--template", "ollama:smol"
    )
    assert code == 0, out


def test_show_prints_the_template_unwrapped(cli: typer.Typer, tmp_path: Path) -> None:
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
    assert built.template.stop == ["<|im_end|>"] and built.template.end_of_turn == "<|im_end|>"
    assert built.template.matched == "file"


def test_without_go_converted_templates_are_accepted_and_files_fail_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good.gotmpl"
    good.write_text(build_ollama_template(REF["chatml"]).template.template, encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `go` on PATH
    # The conversion checks its own layout against the chat template on the whole battery.
    converted = build_ollama_template(REF["smollm2"] + "{# edited #}")
    assert converted.parity is None and converted.template.matched == "probed"
    with pytest.raises(TemplateError, match="needs the Go toolchain"):
        build_ollama_template(REF["chatml"], template_file=good)
    with pytest.raises(TemplateError, match="needs the Go toolchain"):
        build_ollama_template(REF["smollm2"], require_parity=True)
