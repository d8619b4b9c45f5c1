"""A short real LoRA on SmolLM2-135M-Instruct (the embedded `smollm2-135m` base), on CPU.

Also proves the GGUF base is dequantised once into the cache, and that an Ollama model name
resolves to the same base through the GGUF blob Ollama reports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ollama_tune._util import cache_dir
from ollama_tune.models import resolve_base_model

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "customer-support" / "train.jsonl"


def _data(tmp_path: Path) -> Path:
    if SAMPLE.is_file():
        return SAMPLE
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from test_train import write_qa

    return write_qa(tmp_path / "qa.jsonl", 40)


def test_smollm2_alias_is_materialised_once(smollm2_gguf: Path) -> None:
    ref = resolve_base_model("smollm2-135m")
    assert ref.kind == "alias" and ref.architecture == "llama"
    assert ref.hf_dir.parent == cache_dir() / "bases"
    assert (ref.hf_dir / "config.json").is_file() and (ref.hf_dir / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((ref.hf_dir / "config.json").read_text())
    assert ref.source_path == str(smollm2_gguf)
    marker = ref.hf_dir / "ollama_tune_base.json"
    written = marker.stat().st_mtime_ns
    again = resolve_base_model("smollm2-135m")
    assert again.hf_dir == ref.hf_dir and again.sha256 == ref.sha256
    assert marker.stat().st_mtime_ns == written  # no second dequantisation


def test_ollama_name_trains_from_the_same_blob(fake_ollama, smollm2_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("smollm2:135m", gguf_path=str(smollm2_gguf))
    ref = resolve_base_model("smollm2:135m")
    assert ref.kind == "ollama" and ref.source_path == str(smollm2_gguf)
    assert ref.hf_dir == resolve_base_model("smollm2-135m").hf_dir


def test_short_lora_on_smollm2_learns_and_reports_speed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ollama_tune.cli import main

    resolve_base_model("smollm2-135m")  # materialised by the test above when run together
    data = _data(tmp_path)
    # A few held-out rows keep validation cheap on a 2-core machine.
    held_out = tmp_path / "held_out.jsonl"
    test_src = data.with_name("test.jsonl") if data == SAMPLE else data
    held_out.write_text("".join(test_src.read_text("utf-8").splitlines(True)[:4]), "utf-8")
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--test-data", str(held_out), "--output", str(out)]
    argv += ["--max-steps", "8", "--batch-size", "1", "--max-seq-len", "192", "--lr", "1e-3"]
    argv += ["--save-steps", "8", "--eval-steps", "4", "--json"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    result = json.loads(capsys.readouterr().out)
    doc = json.loads((out / "run.json").read_text("utf-8"))
    assert doc["base_model"]["kind"] == "alias" and doc["stop_tokens"] == ["<|im_end|>"]
    assert doc["chat_template"].startswith("{% for message in messages %}")
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    assert len(losses) == 8 and evals[0][0] == 0  # the base model's own validation loss
    assert result["eval_loss"] < evals[0][1], evals  # fine-tuning lowered held-out loss
    # The figures the issue asks for, visible with `pytest -s`.
    with capsys.disabled():
        print(
            f"\nSmolLM2-135M LoRA on CPU: {result['steps']} steps, run {result['seconds']:.1f} s "
            f"(incl. load + validation), {result['tokens_per_s']:.1f} training tokens/s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB, train loss {losses[0]:.3f} -> "
            f"{losses[-1]:.3f}, eval {evals[0][1]:.3f} -> {result['eval_loss']:.3f}"
        )
