"""`train --template FILE`: the TEMPLATE the user hands over is what training renders through,
what run.json records and what the bundle's Modelfile ships, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# ChatML without SmolLM2's default system prompt: a deliberate difference from the tokenizer's
# Jinja template, so a bundle built from the converted template would not match it.
CHATML = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
)


def test_train_renders_through_the_template_file_and_export_ships_it(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_train import write_qa

    from _cli import run_cli

    tpl = tmp_path / "chatml.tmpl"
    tpl.write_text(CHATML, encoding="utf-8")
    (tmp_path / "chatml.json").write_text(json.dumps({"stop": ["<|im_end|>"]}), "utf-8")
    data = write_qa(tmp_path / "qa.jsonl", n=8)
    run_dir = tmp_path / "run"
    args = ["train", "--data", str(data), "--base-model", str(tiny_model_dir), "-o", str(run_dir)]
    args += ["--template", str(tpl), "--max-steps", "1", "--batch-size", "2"]
    args += ["--max-seq-len", "96", "--no-val-recall", "--json"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, out + err

    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert run["ollama_template"]["template"] == CHATML
    assert run["ollama_template"]["matched"] == "file"
    assert run["template_renderer"] == "go"
    assert "<|im_end|>" in run["stop_tokens"]

    code, out, err = run_cli(capsys, "export", str(run_dir), "--quant", "f16", "--no-guard")
    assert code == 0, out + err
    # Shipped as trained, and how it differs from SmolLM2's own Jinja format is said.
    assert "template-distance" in out + err and "not the model's native format" in out + err
    modelfile = (run_dir / "bundle" / "Modelfile").read_text(encoding="utf-8")
    assert CHATML.strip() in modelfile
    assert "You are a helpful AI assistant named SmolLM" not in modelfile


def test_train_refuses_a_missing_template_file_in_one_line(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_train import write_qa

    from _cli import run_cli

    data = write_qa(tmp_path / "qa.jsonl", n=8)
    missing = tmp_path / "nope.tmpl"
    args = ["train", "--data", str(data), "--base-model", str(tiny_model_dir)]
    args += ["-o", str(tmp_path / "run"), "--template", str(missing), "--max-steps", "1"]
    code, out, err = run_cli(capsys, *args)
    assert code != 0
    assert "nope.tmpl" in out + err and "Traceback" not in out + err


LLAMA3 = (
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
    "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
)


@pytest.mark.parametrize(("text", "eot"), [(CHATML, "<|im_end|>"), (LLAMA3, "<|eot_id|>")])
def test_a_template_file_without_stops_ends_its_training_completions(
    tmp_path: Path, text: str, eot: str
) -> None:
    """No sibling .json: the end of turn is read off Go's renderings, so training teaches the
    model to stop and the bundle stops there."""
    from ollama_tune.templates.parity import load_template_file
    from ollama_tune.templates.training import completion_text

    path = tmp_path / "t.tmpl"
    path.write_text(text, encoding="utf-8")
    tmpl = load_template_file(path)
    assert tmpl.end_of_turn.strip() == eot and tmpl.stop == [eot]
    assert completion_text(tmpl, "はい。").endswith(eot)
