"""A short real LoRA on SmolLM2-135M-Instruct (the embedded `smollm2-135m` base), on CPU.

Also proves the GGUF base is dequantised once into the cache, and that an Ollama model name
resolves to the same base through the GGUF blob Ollama reports.
"""

from __future__ import annotations

import json
import sys
import time
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
    started = time.monotonic()
    again = resolve_base_model("smollm2-135m")
    assert again.hf_dir == ref.hf_dir
    assert time.monotonic() - started < 10  # hashing only, no second dequantisation


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
    out = tmp_path / "run"
    argv = ["train", "--data", str(_data(tmp_path)), "--output", str(out), "--json"]
    argv += ["--max-steps", "12", "--batch-size", "2", "--max-seq-len", "256", "--lr", "1e-3"]
    argv += ["--save-steps", "6", "--eval-steps", "6"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    result = json.loads(capsys.readouterr().out)
    doc = json.loads((out / "run.json").read_text("utf-8"))
    assert doc["base_model"]["kind"] == "alias" and doc["stop_tokens"] == ["<|im_end|>"]
    assert doc["chat_template"].startswith("{% for message in messages %}")
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    evals = [r["eval_loss"] for r in records if "eval_loss" in r]
    assert evals[-1] < evals[0] or result["eval_loss"] < evals[0], evals
    # The figures the issue asks for, visible with `pytest -s`.
    with capsys.disabled():
        print(
            f"\nSmolLM2-135M LoRA on CPU: {result['steps']} steps in {result['seconds']:.1f} s "
            f"({result['seconds'] / result['steps']:.2f} s/step incl. load), "
            f"{result['tokens_per_s']:.0f} tokens/s, peak RSS {result['peak_rss_mb']:.0f} MB, "
            f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
            f"eval {evals[0]:.3f} -> {result['eval_loss']:.3f}"
        )
