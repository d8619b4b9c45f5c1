"""Real SmolLM2-135M: a short LoRA → `ollama-tune export` → llama.cpp answers and stops.

The LoRA is trained here with plain PEFT for a few steps on two Japanese support answers (loss
on the answer and its <|im_end|>), so the exported model must both know the answer and stop.
Figures (export times, GGUF sizes, llama.cpp tokens/s) are printed; run with -s to see them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from _smol_bundle import PAIRS
from ollama_tune.cli import app

pytestmark = pytest.mark.integration


@pytest.fixture
def exported(smol_bundle: dict[str, Any]) -> dict[str, Any]:
    return smol_bundle


def test_lora_learned_something(exported: dict[str, Any]) -> None:
    losses = exported["run"]["metrics"]["losses"]
    assert losses[-1] < losses[0] / 4


def test_bundle_has_both_quantizations_and_a_clean_modelfile(exported: dict[str, Any]) -> None:
    from ollama_tune.modelfile import Modelfile
    from ollama_tune.templates import go_available

    data, bundle = exported["data"], exported["run_dir"] / "bundle"
    assert set(data["ggufs"]) == {"q8_0", "q4_k_m"}
    # 135M parameters: Q8_0 ≈ 145 MB, Q4_K_M ≈ 105 MB (some rows fall back to larger types).
    assert 120e6 < data["sizes"]["q8_0"] < 170e6
    assert 80e6 < data["sizes"]["q4_k_m"] < data["sizes"]["q8_0"]
    assert data["template_family"] == "chatml"
    assert data["parity_checked"] is go_available()
    mf = Modelfile.read(bundle / "Modelfile")
    assert mf.from_ == "./model-q8_0.gguf" and ("stop", "<|im_end|>") in mf.parameters
    assert [i for i in mf.lint(base_dir=bundle) if i.severity == "error"] == []


def test_gguf_metadata_names_the_model_and_carries_the_template(exported: dict[str, Any]) -> None:
    from gguf import GGUFReader

    reader = GGUFReader(exported["data"]["ggufs"]["q4_k_m"])

    def text(key: str) -> str:
        field = reader.fields[key]
        return bytes(field.parts[field.data[0]]).decode("utf-8")

    assert text("general.name") == "smol-support"
    assert text("tokenizer.chat_template") == exported["run"]["chat_template"]


@pytest.mark.parametrize("quant", ["q8_0", "q4_k_m"])
def test_llama_cpp_answers_in_japanese_and_stops_on_im_end(
    exported: dict[str, Any], quant: str
) -> None:
    from ollama_tune.runtime import GenerateOptions, open_model

    model = open_model(exported["data"]["ggufs"][quant], n_ctx=512)
    try:
        eos = model.llm._model.token_get_text(model.llm.token_eos())  # type: ignore[attr-defined]
        gen = model.generate(
            [{"role": "user", "content": PAIRS[0][0]}], GenerateOptions(max_tokens=64)
        )
    finally:
        model.close()
    print(
        f"\n{quant}: {gen.text!r} {gen.completion_tokens} tokens, ttft {gen.ttft_s:.2f}s, "
        f"{gen.tokens_per_s:.1f} tok/s"
    )
    assert eos == "<|im_end|>"
    assert gen.done_reason == "stop" and gen.completion_tokens < 64
    assert "14日" in gen.text


def test_chat_cli_runs_the_bundle_modelfile(exported: dict[str, Any]) -> None:
    bundle = exported["run_dir"] / "bundle"
    result = CliRunner().invoke(
        app, ["chat", str(bundle), "--once", PAIRS[1][0], "--max-tokens", "64", "--json"]
    )
    assert result.exit_code == 0, result.output
    gen = json.loads(result.stdout)
    assert gen["done_reason"] == "stop" and "18時" in gen["text"]
