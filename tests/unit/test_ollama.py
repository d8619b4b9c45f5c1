"""OllamaService against the documented-API fake: exact JSON sent, blobs, errors, retries."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ollama_tune.errors import OllamaError
from ollama_tune.modelfile import Modelfile
from ollama_tune.ollama import OllamaService, gguf_from_manifest, version_warnings


def test_our_module_never_shadows_the_official_client() -> None:
    code = (
        "import ollama, ollama_tune.ollama as ours;"
        "assert ollama.Client is ours._ollama_client.Client;"
        "assert 'ollama_tune' not in ollama.__file__;"
        "print(ollama.__file__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("ollama/__init__.py")


def test_host_comes_from_env_or_argument(fake_ollama, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert OllamaService().host == fake_ollama.host
    assert OllamaService("example.com").host == "http://example.com:11434"
    monkeypatch.delenv("OLLAMA_HOST")
    assert OllamaService().host == "http://127.0.0.1:11434"


def _bundle(tmp_path: Path, text: str) -> Modelfile:
    (tmp_path / "model.gguf").write_bytes(b"GGUF" + b"\x01" * 5000)
    (tmp_path / "adapter.gguf").write_bytes(b"GGUF" + b"\x02" * 300)
    (tmp_path / "Modelfile").write_text(text, encoding="utf-8")
    return Modelfile.read(tmp_path / "Modelfile")


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_create_from_files_uploads_blobs_then_sends_exact_json(fake_ollama, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mf = _bundle(
        tmp_path,
        'FROM ./model.gguf\nADAPTER ./adapter.gguf\nTEMPLATE """{{ .Prompt }}"""\n'
        "SYSTEM 丁寧に答える\nPARAMETER stop <|im_end|>\nPARAMETER num_ctx 4096\n"
        "MESSAGE user 返品は？\nMESSAGE assistant 14日以内です。\n",
    )
    events: list[tuple[str, float, float | None]] = []
    result = OllamaService().create(
        "bot", mf, quantize="q4_K_M", progress=lambda *e: events.append(e)
    )
    model, adapter = _digest(tmp_path / "model.gguf"), _digest(tmp_path / "adapter.gguf")
    assert fake_ollama.last("/api/create").json == {
        "model": "bot",
        "stream": True,
        "quantize": "q4_K_M",
        "files": {"model.gguf": model},
        "adapters": {"adapter.gguf": adapter},
        "template": "{{ .Prompt }}",
        "system": "丁寧に答える",
        "parameters": {"stop": ["<|im_end|>"], "num_ctx": 4096},
        "messages": [
            {"role": "user", "content": "返品は？"},
            {"role": "assistant", "content": "14日以内です。"},
        ],
    }
    assert fake_ollama.blobs[model] == (tmp_path / "model.gguf").read_bytes()
    assert result.uploaded == [model, adapter]
    assert any(desc == "create bot" for desc, *_ in events)
    # A second create finds the blobs (HEAD 200) and uploads nothing.
    again = OllamaService().create("bot2", mf)
    assert again.uploaded == [] and again.reused == [model, adapter]
    assert len(fake_ollama.requests_to(f"/api/blobs/{model}", "POST")) == 1


def test_create_from_base_model_checks_it_exists(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    mf = Modelfile(from_="llama3.2:1b", system="hi", parameters=[("temperature", "0.2")])
    with pytest.raises(OllamaError) as err:
        OllamaService().create("bot", mf)
    assert "ollama pull llama3.2:1b" in (err.value.hint or "")
    assert not fake_ollama.requests_to("/api/create")
    fake_ollama.add_model("llama3.2:1b")
    OllamaService().create("bot", mf)
    assert fake_ollama.last("/api/create").json == {
        "model": "bot",
        "stream": True,
        "from": "llama3.2:1b",
        "system": "hi",
        "parameters": {"temperature": 0.2},
    }
    assert "bot:latest" in fake_ollama.models


def test_parameters_the_server_version_rejects_are_reported_before_create(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("base")
    mf = Modelfile(from_="base", parameters=[("tfs_z", "1.0")])
    with pytest.raises(OllamaError, match=r"tfs_z is rejected by Ollama 0\.12\.6"):
        OllamaService().create("bot", mf)
    assert not fake_ollama.requests_to("/api/create")
    assert version_warnings("0.1.30", {"tfs_z": 1.0}) == ([], [])
    assert version_warnings("0.12.0", {"mirostat": 1})[1]


def test_create_400_shows_ollamas_own_message(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("base")
    fake_ollama.fail("/api/create", status=400, error="invalid model name")
    with pytest.raises(OllamaError) as err:
        OllamaService().create("Bad Name!", Modelfile(from_="base"))
    assert "HTTP 400" in err.value.message and "invalid model name" in err.value.message
    assert len(fake_ollama.requests_to("/api/create")) == 1  # create is never retried


def test_fake_rejects_a_blob_whose_bytes_do_not_match_the_digest(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    import httpx

    wrong = "sha256:" + "0" * 64
    r = httpx.post(f"{fake_ollama.host}/api/blobs/{wrong}", content=b"data")
    assert r.status_code == 400 and "digest mismatch" in r.json()["error"]
    r = httpx.post(f"{fake_ollama.host}/api/create", json={"model": "m", "files": {"a": wrong}})
    assert r.status_code == 400 and wrong in r.json()["error"]


def test_unreachable_server_names_host_and_how_to_start_it() -> None:
    with pytest.raises(OllamaError) as err:
        OllamaService().list()
    assert "http://127.0.0.1:9" in err.value.message
    assert "ollama serve" in (err.value.hint or "")
    assert err.value.exit_code == 3


def test_missing_model_says_to_pull_it(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OllamaError) as err:
        OllamaService().chat("nope:1b", [{"role": "user", "content": "hi"}])
    assert "ollama pull nope:1b" in (err.value.hint or "")
    assert OllamaService().exists("nope:1b") is False


def test_idempotent_calls_retry_5xx_with_backoff(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("a:1b")
    fake_ollama.fail("/api/tags", status=503, times=2)
    assert [m.name for m in OllamaService().list()] == ["a:1b"]
    assert len(fake_ollama.requests_to("/api/tags")) == 3
    fake_ollama.fail("/api/tags", status=503, times=3)
    with pytest.raises(OllamaError, match="HTTP 503"):
        OllamaService().list()


def test_timeouts_are_retried_then_reported(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.delay("/api/version", 0.5)
    with pytest.raises(OllamaError, match="did not answer /api/version in time \\(2 tries\\)"):
        OllamaService(timeout=0.1, retries=2).version()
    assert len(fake_ollama.requests_to("/api/version")) == 2


def test_chat_streams_and_reports_counts_and_timings(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("bot")
    fake_ollama.script("bot", {"返品できますか？": "はい、14日以内なら返品できます。"})
    svc = OllamaService()
    reply = svc.chat("bot", [{"role": "user", "content": "返品できますか？"}], {"temperature": 0})
    assert reply.text == "はい、14日以内なら返品できます。"
    assert reply.done_reason == "stop"
    assert reply.eval_count == 6  # 17 characters in pieces of 3
    assert reply.tokens_per_s == pytest.approx(50.0)
    assert reply.ttft_s is not None and 0 < reply.ttft_s <= reply.total_s
    body = fake_ollama.last("/api/chat").json
    assert body["stream"] is True and body["options"] == {"temperature": 0}
    cut = svc.chat("bot", [{"role": "user", "content": "返品できますか？"}], {"num_predict": 2})
    assert (cut.text, cut.done_reason) == ("はい、14日", "length")  # two 3-character pieces


def test_pull_streams_progress_and_delete_removes(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    events: list[tuple[str, float, float | None]] = []
    svc = OllamaService()
    svc.pull("qwen2.5:0.5b", progress=lambda *e: events.append(e))
    assert events[-1] == ("pull qwen2.5:0.5b", 3000.0, 3000.0)
    assert svc.exists("qwen2.5:0.5b")
    svc.delete("qwen2.5:0.5b")
    assert fake_ollama.last("/api/delete").json == {"model": "qwen2.5:0.5b"}
    with pytest.raises(OllamaError, match="not found"):
        svc.delete("qwen2.5:0.5b")


def test_find_gguf_from_show_then_from_manifests(fake_ollama, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    blob = tmp_path / "blobs" / ("sha256-" + "ab" * 32)
    blob.parent.mkdir()
    blob.write_bytes(b"GGUF")
    fake_ollama.add_model("shown", gguf_path=str(blob))
    assert OllamaService().find_gguf("shown") == blob
    # Ollama on another path layout: show's FROM is not on this disk, the manifest is.
    fake_ollama.add_model("llama3.2:1b")
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path))
    manifest = tmp_path / "manifests/registry.ollama.ai/library/llama3.2/1b"
    manifest.parent.mkdir(parents=True)
    layers = [
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "cd" * 32},
        {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + "ab" * 32},
    ]
    manifest.write_text(json.dumps({"layers": layers}), encoding="utf-8")
    assert OllamaService().find_gguf("llama3.2:1b") == blob
    assert gguf_from_manifest("other:7b") is None
    fake_ollama.add_model("ghost")
    with pytest.raises(OllamaError, match="cannot find the GGUF"):
        OllamaService().find_gguf("ghost")


def test_generate_endpoint_of_the_fake_follows_the_api(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    import ollama

    fake_ollama.add_model("bot")
    client = ollama.Client(host=fake_ollama.host)
    r = client.generate(model="bot", prompt="hello", stream=False)
    assert r.response == "echo: hello" and r.done_reason == "stop" and r.eval_count == 4
    parts = list(client.generate(model="bot", prompt="hello", stream=True))
    assert "".join(p.response for p in parts) == "echo: hello" and parts[-1].done
    chat = client.chat(model="bot", messages=[{"role": "user", "content": "hi"}], stream=False)
    assert chat.message.content == "echo: hi" and chat.done_reason == "stop"
    assert chat.eval_duration == chat.eval_count * 20_000_000


def test_missing_adapter_is_refused_before_any_upload(fake_ollama, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ollama_tune.errors import ModelfileError

    mf = _bundle(tmp_path, "FROM ./model.gguf\nADAPTER ./lora.gguf\n")
    with pytest.raises(ModelfileError, match=r"ADAPTER file not found: \./lora\.gguf"):
        OllamaService().create("bot", mf)
    assert fake_ollama.requests == []
