"""`modelfile lint` and `create` refuse what Ollama would choke on, or should never receive.

Through the real CLI: a FROM outside the Modelfile's folder, files that are not model weights
(checked by their magic bytes before anything is uploaded), a TEMPLATE Go cannot parse (Go's
own parser when `go` is installed, a delimiter check otherwise), a `\"\"\"` inside a multi-line
value; and every problem is reported, not only the first.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from _cli import run_cli
from ollama_tune.templates.gorender import go_available


def _lint(capsys, path: Path, *extra: str) -> tuple[int, list[dict[str, object]], str]:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, "modelfile", "lint", str(path), "--json", *extra)
    assert "Traceback" not in err
    return code, json.loads(out), " ".join(err.split())


def _codes(issues: list[dict[str, object]]) -> set[tuple[object, object]]:
    return {(i["line"], i["code"]) for i in issues if i["severity"] == "error"}


def test_from_etc_passwd_is_refused_by_lint_and_create_uploads_nothing(
    fake_ollama, capsys, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "a" / "b" / "c"
    folder.mkdir(parents=True)
    mf = folder / "Modelfile"
    mf.write_text("FROM ../../../../../../../../etc/passwd\n", encoding="utf-8")
    code, issues, _ = _lint(capsys, mf)
    assert code == 1 and _codes(issues) == {(1, "outside-folder"), (1, "not-weights")}
    text = " ".join(str(i["message"]) for i in issues)
    assert "/etc/passwd" in text and "is not a GGUF file: it starts with 'root'" in text
    # --allow-outside lifts the folder rule only: /etc/passwd is still not a model.
    code, issues, _ = _lint(capsys, mf, "--allow-outside")
    assert code == 1 and _codes(issues) == {(1, "not-weights")}
    for extra in ([], ["--allow-outside"]):
        code, out, err = run_cli(capsys, "create", str(mf), "--name", "bot", *extra)
        assert code == 2 and "created" not in out and "Traceback" not in err
        assert "not a GGUF file" in " ".join(err.split())
    assert not [r for r in fake_ollama.requests if r.path.startswith("/api/blobs/")]


def test_a_file_outside_is_accepted_with_allow_outside(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "shared.gguf").write_bytes(b"GGUF" + b"\0" * 32)
    (tmp_path / "bot").mkdir()
    mf = tmp_path / "bot" / "Modelfile"
    mf.write_text("FROM ../shared.gguf\n", encoding="utf-8")
    assert _codes(_lint(capsys, mf)[1]) == {(1, "outside-folder")}
    code, issues, _ = _lint(capsys, mf, "--allow-outside")
    assert code == 0 and issues == []


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("model.gguf", b"\x89PNG\r\n\x1a\nnot a model", "starts with '\\x89PNG'"),
        ("notes.txt", "ただのメモ".encode(), "is not a GGUF file"),
        ("model.gguf", b"", "nothing (empty file)"),
        ("model.safetensors", b"GGUF" + b"\0" * 20, "not a safetensors file"),
    ],
    ids=["fake-gguf", "txt", "empty", "bad-safetensors"],
)
def test_from_and_adapter_must_be_model_weights(capsys, tmp_path, name, data, words) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / name).write_bytes(data)
    (tmp_path / "base.gguf").write_bytes(b"GGUF\x03\0\0\0")
    mf = tmp_path / "Modelfile"
    mf.write_text(f"FROM ./{name}\nADAPTER ./{name}\n", encoding="utf-8")
    code, issues, _ = _lint(capsys, mf)
    assert code == 1 and _codes(issues) == {(1, "not-weights"), (2, "not-weights")}
    assert all(words in str(i["message"]) for i in issues if i["code"] == "not-weights")


def test_weights_ollama_accepts_pass_lint(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    hf = tmp_path / "hf-model"
    hf.mkdir()
    header = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    (hf / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    (hf / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "model.bin").write_bytes(b"GGUF\x03\0\0\0")  # a GGUF named .bin
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "adapter_model.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header + b"\0" * 4
    )
    mf = tmp_path / "Modelfile"
    for text in ("FROM ./hf-model\n", "FROM ./model.bin\nADAPTER ./lora\n"):
        mf.write_text(text, encoding="utf-8")
        code, issues, _ = _lint(capsys, mf)
        assert (code, issues) == (0, []), text
    (tmp_path / "empty").mkdir()
    mf.write_text("FROM ./empty\n", encoding="utf-8")
    code, issues, _ = _lint(capsys, mf)
    assert code == 1 and "holds no model weights" in str(issues[0]["message"])


BAD_TEMPLATES = [
    # (template lines after TEMPLATE, the file line Go reports, words)
    ('"""{{ if .System }}{{ .System }}\n{{ .Prompt }}\n"""', 5, "unexpected EOF"),
    ('"""{{ .System }}\n{{ .Prompt | shout }}"""', 4, 'function "shout" not defined'),
    ('"""<|user|>\n{{ .Prompt }\n"""', 4, "unexpected"),
]


@pytest.mark.parametrize("with_go", [True, False], ids=["go", "fallback"])
@pytest.mark.parametrize(("template", "line", "words"), BAD_TEMPLATES, ids=["eof", "func", "brace"])
def test_an_invalid_go_template_is_reported_with_its_line(
    capsys, tmp_path, monkeypatch, with_go, template, line, words
) -> None:  # type: ignore[no-untyped-def]
    if with_go and not go_available():
        pytest.fail("the Go toolchain is part of the test environment (templates use it)")
    if not with_go:
        monkeypatch.setattr("ollama_tune.templates.gorender.go_available", lambda: False)
    mf = tmp_path / "Modelfile"
    mf.write_text(f"FROM llama3.2:1b\n\nTEMPLATE {template}\n", encoding="utf-8")
    code, issues, _ = _lint(capsys, mf)
    bad = [i for i in issues if i["code"] == "bad-template"]
    if not with_go and "shout" in template:
        assert bad == []  # undefined functions need Go's parser; the fallback checks nesting
        return
    assert code == 1 and len(bad) == 1
    assert bad[0]["line"] == line if with_go else bad[0]["line"] in (3, 4, 5)
    if with_go:
        assert words in str(bad[0]["message"])
    mf.write_text('FROM x\nTEMPLATE """{{ if .System }}{{ .System }}{{ end }}"""\n', "utf-8")
    assert _lint(capsys, mf)[:2] == (0, [])


SYSTEM_WITH_QQQ = '''FROM llama3.2:1b
SYSTEM """Answer politely.
Quote the policy like this:
"""
End of the policy."""
PARAMETR temperature 0.2
MESSAGE bot hello
PARAMETER top_p 1.5
'''


def test_triple_quotes_inside_system_are_named_and_later_problems_still_reported(
    capsys, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    mf = tmp_path / "Modelfile"
    mf.write_text(SYSTEM_WITH_QQQ, encoding="utf-8")
    code, issues, err = _lint(capsys, mf)
    assert code == 1
    assert _codes(issues) == {(5, "parse-error"), (6, "parse-error"), (7, "parse-error"),
                              (8, "out-of-range")}  # fmt: skip
    first = str(issues[0]["message"])
    assert 'the SYSTEM value opened with """ on line 2 ended at the """ on line 4' in first
    assert 'the text contains """, which cannot be written in a Modelfile' in first
    assert "unknown command 'PARAMETR'" in err and "MESSAGE role 'bot'" in err
    # `show` and `create` read the same file: one error that lists every parse problem.
    code, _, err = run_cli(capsys, "modelfile", "show", str(mf))
    text = " ".join(err.split())
    assert code == 1 and "Traceback" not in err
    assert f"{mf}:5:" in text and f"{mf}:6:" in text and f"{mf}:7:" in text
    assert "(and 2 more problem(s))" in text


def test_library_create_checks_magic_bytes_even_without_lint(fake_ollama, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ollama_tune.errors import ModelfileError
    from ollama_tune.modelfile import Modelfile
    from ollama_tune.ollama import OllamaService

    (tmp_path / "real.gguf").write_bytes(b"GGUF" + b"\1" * 10)
    (tmp_path / "adapter.gguf").write_text("#!/bin/sh\necho hi\n", encoding="utf-8")
    mf = Modelfile(from_=str(tmp_path / "real.gguf"), adapters=[str(tmp_path / "adapter.gguf")])
    with pytest.raises(ModelfileError, match=r"adapter\.gguf is not a GGUF file"):
        OllamaService().create("bot", mf, tmp_path)
    assert not [r for r in fake_ollama.requests if r.path.startswith("/api/blobs/")]


def test_values_that_look_like_rich_markup_are_printed_as_they_are(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mf = tmp_path / "Modelfile"
    mf.write_text("FROM llama3.2:1b\nPARAMETER num_ctx [/INST]\n", "utf-8")
    code, out, err = run_cli(capsys, "modelfile", "lint", str(mf))
    assert code == 1 and "Traceback" not in err  # rich used to raise MarkupError here
    assert "num_ctx'[/INST]'isnotint" in "".join(out.split())
