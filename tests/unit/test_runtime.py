"""The embedded runtime on tiny real GGUFs (llama.cpp) and HF dirs (transformers), and `chat`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ollama_tune.cli import app
from ollama_tune.errors import ModelError
from ollama_tune.export import convert_to_gguf
from ollama_tune.runtime import GenerateOptions, open_model

QUESTION = [{"role": "user", "content": "返品はできますか？"}]


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny-gguf") / "model-f16.gguf"
    return convert_to_gguf(tiny_model_dir, out, "f16", model_name="tiny")


@pytest.fixture(scope="module")
def stopper_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama whose most likely next token is always <|im_end|> (its EOS).

    The residual stream carries a constant positive first coordinate (embeddings set it, no
    layer writes it), the final norm keeps only that coordinate, and only the EOS row of the
    untied output head reads it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(
        str(tiny_model_dir), dtype=torch.float32, tie_word_embeddings=False
    )
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 10.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[tok.eos_token_id, 0] = 5.0
    out = tmp_path_factory.mktemp("stopper")
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def test_llama_cpp_prompt_uses_the_gguf_chat_template(tiny_gguf: Path, tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    messages = [{"role": "system", "content": "丁寧に答えてください。"}, *QUESTION]
    expected = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    model = open_model(str(tiny_gguf), n_ctx=256, n_threads=1)
    try:
        ids = model.prompt_tokens(messages)  # type: ignore[attr-defined]
        gen = model.generate(messages, GenerateOptions(max_tokens=3))
    finally:
        model.close()
    assert ids == tok(expected, add_special_tokens=False)["input_ids"]
    assert gen.prompt_tokens == len(ids)


def test_llama_cpp_is_deterministic_and_stops_at_max_tokens(tiny_gguf: Path):
    model = open_model(str(tiny_gguf), n_ctx=256, n_threads=1)
    try:
        first = model.generate(QUESTION, GenerateOptions(max_tokens=6))
        second = model.generate(QUESTION, GenerateOptions(max_tokens=6))
    finally:
        model.close()
    assert first.done_reason == "length" and first.completion_tokens == 6
    assert first.text == second.text and first.text
    assert 0 < first.ttft_s <= first.total_s and first.tokens_per_s > 0


def test_llama_cpp_stops_on_the_end_of_turn_token(stopper_dir: Path, tmp_path: Path):
    gguf = convert_to_gguf(stopper_dir, tmp_path / "stopper.gguf", "f16")
    model = open_model(str(gguf), n_ctx=128, n_threads=1)
    try:
        gen = model.generate(QUESTION, GenerateOptions(max_tokens=20))
    finally:
        model.close()
    assert gen.done_reason == "stop" and gen.completion_tokens == 0 and gen.text == ""


def test_transformers_generator_stops_on_eos_and_counts_tokens(stopper_dir: Path):
    model = open_model(str(stopper_dir))
    gen = model.generate(QUESTION, GenerateOptions(max_tokens=20))
    assert gen.done_reason == "stop" and gen.completion_tokens == 0
    assert gen.prompt_tokens > 5


def test_transformers_and_llama_cpp_agree_on_the_answer_length_limit(tiny_model_dir: Path):
    gen = open_model(str(tiny_model_dir)).generate(QUESTION, GenerateOptions(max_tokens=4))
    assert gen.done_reason == "length" and gen.completion_tokens == 4 and gen.text


def test_modelfile_runs_embedded_with_system_and_few_shots(
    tiny_gguf: Path, tiny_model_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
):
    from transformers import AutoTokenizer

    from ollama_tune.modelfile import Modelfile

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "m.gguf").symlink_to(tiny_gguf)
    mf = Modelfile(
        from_="./m.gguf",
        system="あなたはサポート担当です。",
        messages=[("user", "営業時間は？"), ("assistant", "9時から18時です。")],
        parameters=[("num_ctx", "256"), ("stop", "。")],
    )
    (bundle / "Modelfile").write_text(mf.render(), encoding="utf-8")
    model = open_model(str(bundle))
    try:
        ids = model.prompt_tokens(QUESTION)  # type: ignore[attr-defined]
        assert model.llm.n_ctx() == 256  # type: ignore[attr-defined]
    finally:
        model.close()
    assert capfd.readouterr().err == ""  # llama.cpp's log stays out of the terminal
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    # Ollama's order: SYSTEM (request has none), then MESSAGEs, then the request.
    ollama_order = [
        {"role": "system", "content": "あなたはサポート担当です。"},
        {"role": "user", "content": "営業時間は？"},
        {"role": "assistant", "content": "9時から18時です。"},
        *QUESTION,
    ]
    text = tok.apply_chat_template(ollama_order, tokenize=False, add_generation_prompt=True)
    assert ids == tok(text, add_special_tokens=False)["input_ids"]


def test_modelfile_from_a_model_name_cannot_run_embedded(tmp_path: Path):
    (tmp_path / "Modelfile").write_text("FROM llama3.2:1b\nSYSTEM hi\n")
    with pytest.raises(ModelError, match="ollama:NAME"):
        open_model(str(tmp_path / "Modelfile"))


def test_unknown_reference_lists_the_accepted_forms(tmp_path: Path):
    with pytest.raises(ModelError) as err:
        open_model(str(tmp_path / "nothing-here"))
    assert "ollama:NAME" in (err.value.hint or "")


def test_ollama_reference_goes_through_the_client_layer(fake_ollama):  # type: ignore[no-untyped-def]
    fake_ollama.add_model("support-bot")
    fake_ollama.script("support-bot", {"返品はできますか？": "30日以内なら可能です。"})
    gen = open_model("ollama:support-bot").generate(QUESTION, GenerateOptions(max_tokens=50))
    assert gen.text == "30日以内なら可能です。" and gen.done_reason == "stop"
    assert gen.completion_tokens > 0 and gen.tokens_per_s > 0
    body = fake_ollama.last("/api/chat").json
    assert body["options"] == {"temperature": 0.0, "seed": 42, "num_predict": 50}
    assert body["messages"] == QUESTION


def test_chat_cli_once_json(tiny_gguf: Path):
    result = CliRunner().invoke(
        app, ["chat", str(tiny_gguf), "--once", "こんにちは", "--max-tokens", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["completion_tokens"] == 3 and data["done_reason"] == "length"


def test_chat_cli_reads_questions_from_stdin(fake_ollama):  # type: ignore[no-untyped-def]
    fake_ollama.add_model("bot")
    result = CliRunner().invoke(app, ["chat", "ollama:bot"], input="一つ目\n\n二つ目\n")
    assert result.exit_code == 0, result.output
    assert "echo: 一つ目" in result.stdout and "echo: 二つ目" in result.stdout
    # The second request carries the whole conversation so far.
    assert [m["role"] for m in fake_ollama.last("/api/chat").json["messages"]] == [
        "user",
        "assistant",
        "user",
    ]


def test_chat_cli_reports_a_missing_model(tmp_path: Path):
    from ollama_tune.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["chat", str(tmp_path / "missing.gguf"), "--once", "hi"])
    assert exit_info.value.code == 1


def test_truncated_gguf_fails_with_llama_cpp_reason(tiny_gguf: Path, tmp_path: Path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_gguf.read_bytes()[:200_000])
    with pytest.raises(ModelError) as err:
        open_model(str(broken))
    assert "cannot load" in err.value.message and "re-run ollama-tune export" in (
        err.value.hint or ""
    )


def test_amx_cpus_load_without_llamacpp_extra_buffers(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp's AMX repacking segfaults on the first decode on some AMX CPUs
    (ggml-org/llama.cpp#20824): there the model loads on plain CPU buffers and still answers."""
    from ollama_tune.runtime import llama_gen

    flags = tmp_path / "cpuinfo"
    flags.write_text(
        "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
    )
    assert llama_gen.cpu_has_amx(flags)
    flags.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n")
    assert not llama_gen.cpu_has_amx(flags)
    assert not llama_gen.cpu_has_amx(tmp_path / "missing")

    for amx, env, extra in ((True, None, False), (True, "1", True), (False, None, True)):
        monkeypatch.setattr(llama_gen, "cpu_has_amx", lambda amx=amx: amx)
        if env is None:
            monkeypatch.delenv(llama_gen.AMX_ENV, raising=False)
        else:
            monkeypatch.setenv(llama_gen.AMX_ENV, env)
        model = open_model(str(tiny_gguf), n_ctx=256, n_threads=1)
        try:
            assert model.llm.model_params.use_extra_bufts is extra  # type: ignore[attr-defined]
            if not extra:  # the safe load generates (on an AMX CPU the other would crash)
                assert model.generate(QUESTION, GenerateOptions(max_tokens=3)).completion_tokens
        finally:
            model.close()
    import llama_cpp.llama_cpp as native

    assert native.llama_model_default_params().use_extra_bufts  # the library is left as it was
