"""Issue 13: `run --check` refuses, by line, what a recipe loader used to accept silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from _cli import run_cli
from ollama_tune.config import check_recipe, load_recipe
from ollama_tune.errors import UsageError

Capsys = pytest.CaptureFixture[str]

BASE = """\
name: shop
data:
  train: data/train.jsonl
train:
  max_steps: 5
"""


def _write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "train.jsonl").write_text('{"instruction":"q","output":"a"}\n')
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding=encoding)
    return path


@pytest.mark.parametrize(
    ("extra", "line", "key", "words"),
    [
        ("train:\n  lora_r: 4\n", 6, "train", "appears twice (first at line 4)"),
        ("  epochs: .inf\n", 6, "train.epochs", "finite number"),
        ("  epochs: .nan\n", 6, "train.epochs", "finite number"),
        ("  lora_r: true\n", 6, "train.lora_r", "true (a YAML boolean)"),
        ("eval:\n  max_tokens: false\n", 7, "eval.max_tokens", "false (a YAML boolean)"),
        ("ollama:\n  host: 'http://[::1'\n", 7, "ollama.host", "malformed Ollama host"),
        ("ollama:\n  host: 'ftp://x:1'\n", 7, "ollama.host", "malformed Ollama host"),
        ("ollama:\n  host: 'localhost:99999'\n", 7, "ollama.host", "malformed Ollama host"),
    ],
)
def test_bad_recipe_values_are_refused_by_line(
    extra: str, line: int, key: str, words: str, tmp_path: Path, capsys: Capsys
) -> None:
    path = _write(tmp_path, BASE + extra)
    issues = check_recipe(path)
    assert [(i.line, i.key) for i in issues] == [(line, key)], issues
    assert words in issues[0].message and issues[0].hint
    code, out, err = run_cli(capsys, "run", "--check", str(path))
    assert code == 1 and "Traceback" not in out + err and key in out
    with pytest.raises(UsageError, match=f"recipe.yaml:{line}"):
        load_recipe(path)


def test_unknown_data_format_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        BASE.replace("  train: data/train.jsonl\n", "  train: data/train.jsonl\n  format: excel\n"),
    )
    (issue,) = check_recipe(path)
    assert (issue.line, issue.key) == (4, "data.format") and "'excel'" in issue.message
    assert "csv" in issue.message  # names the formats that exist


def test_train_file_as_test_file_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        BASE.replace(
            "  train: data/train.jsonl\n",
            "  train: data/train.jsonl\n  test: ./data/../data/train.jsonl\n",
        ),
    )
    (issue,) = check_recipe(path)
    assert (issue.line, issue.key) == (4, "data.test") and "training file" in issue.message


def test_good_host_forms_pass(tmp_path: Path) -> None:
    for host in ("localhost", "127.0.0.1:11434", "http://[::1]:11434", "https://ollama.example"):
        assert check_recipe(_write(tmp_path, BASE + f"ollama:\n  host: '{host}'\n")) == [], host


def test_a_shift_jis_recipe_is_decoded(tmp_path: Path, capsys: Capsys) -> None:
    text = BASE + "customize:\n  system: あなたは丁寧なサポート担当者です。\n"
    path = _write(tmp_path, text, encoding="shift_jis")
    assert check_recipe(path) == []
    assert load_recipe(path).customize.system == "あなたは丁寧なサポート担当者です。"
    code, out, _ = run_cli(capsys, "run", "--check", str(path))
    assert code == 0 and "no problems" in out


def test_undecodable_recipe_bytes_are_one_clear_error(tmp_path: Path, capsys: Capsys) -> None:
    path = _write(tmp_path, BASE)
    path.write_bytes(BASE.encode() + b"name2: \xff\xfe\x00\x81\xff\n")
    code, out, err = run_cli(capsys, "run", "--check", str(path))
    assert code == 1 and "Traceback" not in out + err
    (issue,) = check_recipe(path)
    assert issue.line == 6 and ("not UTF-8" in issue.message or "character" in issue.message)
