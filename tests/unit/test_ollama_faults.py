"""Broken Ollama servers through the real CLI: each failure is one clear message, exit 3.

The fake injects the faults (tests/fake_ollama.py: `fail(..., body=…)`, `break_stream`,
`delay`); every case checks the exit code, the message a user reads and that no traceback
reached them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _cli import run_cli
from ollama_tune import ollama_call

SUPPORT = Path(__file__).resolve().parents[2] / "examples" / "customer-support" / "train.jsonl"


def _clean(code: int, err: str, expected: int = 3) -> str:
    assert code == expected, err
    assert "Traceback" not in err
    return " ".join(err.split())


def test_a_hanging_server_gets_a_live_note_and_one_clear_message(
    fake_ollama, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OLLAMA_TUNE_TIMEOUT", "1")
    monkeypatch.setattr(ollama_call, "NOTE_AFTER_S", 0.3)
    monkeypatch.setattr(ollama_call, "NOTE_EVERY_S", 0.3)
    fake_ollama.delay("/api/tags", 3)
    code, _, err = run_cli(capsys, "list")
    text = _clean(code, err)
    assert "waiting for Ollama at" in text and "(list)" in text  # the live note
    assert "did not answer list in time (3 tries)" in text and "1 s per try" in text
    assert text.count("Error:") == 1


def test_a_chat_that_hangs_is_not_asked_again_and_says_how_long_it_waited(
    fake_ollama, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from ollama_tune.errors import OllamaError
    from ollama_tune.ollama import OllamaService

    monkeypatch.setenv("OLLAMA_TUNE_TIMEOUT", "0.5")
    monkeypatch.setattr(ollama_call, "NOTE_AFTER_S", 0.2)
    fake_ollama.add_model("bot")
    fake_ollama.delay("/api/chat", 2)
    notes: list[tuple[str, float, float | None]] = []
    with pytest.raises(OllamaError, match=r"did not answer chat in time \(1 try\)"):
        OllamaService(progress=lambda *n: notes.append(n)).chat(
            "bot", [{"role": "user", "content": "hi"}]
        )
    assert len(fake_ollama.requests_to("/api/chat")) == 1
    assert notes and notes[0][0].endswith("(chat with bot)") and notes[0][2] is None


def test_a_stream_cut_halfway_is_not_called_unreachable(fake_ollama, capsys) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):  # pull is retried: every try is cut
        fake_ollama.break_stream("/api/pull", after=2)
    code, _, err = run_cli(capsys, "pull", "qwen2.5:0.5b")
    text = _clean(code, err)
    assert "connection to Ollama at" in text and "broke during pull" in text
    assert "ollama serve" not in text and "cannot reach" not in text


def test_an_error_line_inside_a_chat_stream_shows_the_servers_message(
    fake_ollama, capsys, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("llama3.2:1b")
    fake_ollama.break_stream("/api/chat", after=1, error="model runner has unexpectedly stopped")
    code, _, err = run_cli(
        capsys, "customize", "--data", str(SUPPORT), "--base-model", "llama3.2:1b",
        "--model-name", "bot", "--output", str(tmp_path / "Modelfile"), "--test",
    )  # fmt: skip
    text = _clean(code, err)
    assert "stopped chat with an error: model runner has unexpectedly stopped" in text
    assert "HTTP -1" not in text


def test_rm_of_an_unknown_model_says_it_does_not_exist(fake_ollama, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli(capsys, "rm", "ghost:1b")
    text = _clean(code, err)
    assert "'ghost:1b' not found: it does not exist on Ollama" in text
    assert "pull" not in text and "deleted" not in out
    assert not fake_ollama.requests_to("/api/delete")


GARBAGE = [
    b"<html><body>It works!</body></html>",
    b'{"models": "not a list"}',
    b"[1, 2, 3]",
    b'{"version": 12}',
]


@pytest.mark.parametrize("body", GARBAGE, ids=["html", "wrong-type", "json-list", "bad-version"])
@pytest.mark.parametrize(
    ("argv", "path"),
    [
        (["list"], "/api/tags"),
        (["show", "llama3.2:1b"], "/api/show"),
        (["rm", "llama3.2:1b"], "/api/show"),
        (["pull", "llama3.2:1b"], "/api/pull"),
    ],
    ids=["list", "show", "rm", "pull"],
)
def test_a_server_answering_200_with_garbage_is_one_clear_error(
    fake_ollama, capsys, argv: list[str], path: str, body: bytes
) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("llama3.2:1b")
    fake_ollama.fail(path, status=200, body=body, times=3)
    code, out, err = run_cli(capsys, *argv)
    text = _clean(code, err)
    assert "is not Ollama's API" in text or "ended without 'success'" in text, text
    assert "deleted" not in out and "pulled" not in out
    if argv[0] == "rm":  # nothing was deleted on the word of a server that is not Ollama
        assert not fake_ollama.requests_to("/api/delete")


def test_create_against_a_garbage_server_and_a_cut_create_stream(
    fake_ollama, capsys, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "m.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    mf = tmp_path / "Modelfile"
    mf.write_text("FROM ./m.gguf\n", encoding="utf-8")
    fake_ollama.fail("/api/version", status=200, body=b"<html>proxy</html>")  # not retried
    code, out, err = run_cli(capsys, "create", str(mf), "--name", "bot")
    assert "is not Ollama's API" in _clean(code, err) and "created" not in out
    fake_ollama.break_stream("/api/create", after=1)
    code, out, err = run_cli(capsys, "create", str(mf), "--name", "bot")
    assert "broke during create" in _clean(code, err) and "created" not in out
    assert len(fake_ollama.requests_to("/api/create")) == 1  # create is never retried


def test_chat_answer_that_is_not_json_or_wrong_shaped_is_one_clear_error(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    from ollama_tune.errors import OllamaError
    from ollama_tune.ollama import OllamaService

    fake_ollama.add_model("bot")
    fake_ollama.fail("/api/chat", status=200, body=b"not json at all\n")  # not retried
    with pytest.raises(OllamaError, match="is not Ollama's API"):
        OllamaService().chat("bot", [{"role": "user", "content": "hi"}])
    fake_ollama.fail("/api/chat", status=200, body=json.dumps({"done": True}).encode() + b"\n")
    with pytest.raises(OllamaError, match="ValidationError"):  # JSON, but no `message`
        OllamaService().chat("bot", [{"role": "user", "content": "hi"}])
    assert OllamaService().chat("bot", [{"role": "user", "content": "hi"}]).text == "echo: hi"


@pytest.mark.parametrize("host", ["http://[::1", "http://host:99999", ":::"])
def test_a_malformed_ollama_host_is_a_usage_error_naming_the_variable(
    capsys, monkeypatch, host: str
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OLLAMA_HOST", host)
    code, _, err = run_cli(capsys, "list")
    text = _clean(code, err, expected=2)
    assert f"OLLAMA_HOST {host!r} is not a valid address" in text
    code, _, err = run_cli(capsys, "list", "--host", host)
    assert f"--host {host!r} is not a valid address" in _clean(code, err, expected=2)


def test_a_bad_timeout_variable_is_a_usage_error(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OLLAMA_TUNE_TIMEOUT", "soon")
    code, _, err = run_cli(capsys, "list")
    assert "OLLAMA_TUNE_TIMEOUT='soon'" in _clean(code, err, expected=2)
