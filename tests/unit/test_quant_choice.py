"""Quantization that keeps what was learned: the chooser ships the smallest type within the
threshold (scores injected through scripted models), and `q4_k_m+q8emb` really keeps the
token embeddings and the output tensor at q8_0 (real llama.cpp, GGUF read back with `gguf`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_eval_compare import GOOD, ROWS, ScriptedModel, make_examples

from ollama_tune.evaluate import choose_quant, guard_quantization

SIZES = {"q4_k_m": 100, "q4_k_m+q8emb": 120, "q8_0": 200, "f16": 400}


def test_smallest_type_within_the_threshold_is_chosen() -> None:
    scores = {"f16": 0.50, "q8_0": 0.49, "q4_k_m+q8emb": 0.47, "q4_k_m": 0.30}
    choice = choose_quant(scores, reference="f16", threshold=0.05, sizes=SIZES)
    assert choice.quant == "q4_k_m+q8emb"
    assert choice.within == ("q4_k_m+q8emb", "q8_0", "f16")
    assert "smallest type within 5 points of f16" in choice.reason
    assert "q4_k_m loses 20 points" in choice.reason
    # A tighter threshold moves the choice up; a looser one down to the smallest file.
    assert choose_quant(scores, reference="f16", threshold=0.02, sizes=SIZES).quant == "q8_0"
    assert choose_quant(scores, reference="f16", threshold=0.25, sizes=SIZES).quant == "q4_k_m"


def test_when_nothing_is_within_the_threshold_the_best_candidate_ships_and_says_so() -> None:
    scores = {"f16": 0.60, "q8_0": 0.40, "q4_k_m": 0.20}
    choice = choose_quant(
        scores, reference="f16", threshold=0.05, sizes=SIZES, candidates=["q4_k_m", "q8_0"]
    )
    assert choice.quant == "q8_0" and choice.within == ()
    assert "no type is within 5 points of f16; q8_0" in choice.reason


def test_guard_measures_each_gguf_and_chooses_by_file_size(tmp_path: Path) -> None:
    answers = {
        "f16": GOOD,
        "q8_0": GOOD,
        "q4_k_m+q8emb": GOOD,
        "q4_k_m": {ROWS[0][0]: ROWS[0][1]},  # forgets two of three facts
    }
    paths = {}
    for quant, size in SIZES.items():
        paths[quant] = tmp_path / f"model-{quant}.gguf"
        paths[quant].write_bytes(b"\0" * size)

    def open_model(ref: str) -> ScriptedModel:
        return ScriptedModel(ref, answers[Path(ref).stem.removeprefix("model-")])

    guard = guard_quantization(
        paths, make_examples(), threshold=0.05, open_model=open_model,
        candidates=["q4_k_m", "q4_k_m+q8emb", "q8_0"],
    )  # fmt: skip
    assert guard.choice is not None
    assert guard.choice.quant == "q4_k_m+q8emb"
    assert "(0 MB)" in guard.choice.reason and "q4_k_m loses 67 points" in guard.choice.reason


@pytest.fixture(scope="module")
def wide_f16(smol_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-layer random llama 256 wide with an untied output: K-quants apply to every tensor."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ollama_tune.export import convert_to_gguf

    out = tmp_path_factory.mktemp("wide")
    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=256, intermediate_size=256, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=256,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(str(out / "hf"))
    tok.save_pretrained(str(out / "hf"))
    return convert_to_gguf(out / "hf", out / "model-f16.gguf", "f16", model_name="wide")


@pytest.fixture(scope="module")
def wide_hf(wide_f16: Path) -> Path:
    return wide_f16.parent / "hf"


def _types(path: Path) -> dict[str, object]:
    from gguf import GGUFReader

    return {t.name: t.tensor_type for t in GGUFReader(str(path)).tensors}


def test_q4_k_m_with_q8_0_embeddings_writes_q8_0_embedding_and_output(
    wide_f16: Path, tmp_path: Path
) -> None:
    from gguf import GGMLQuantizationType as T

    from ollama_tune.export import quantize_gguf

    plain = _types(quantize_gguf(wide_f16, tmp_path / "a.gguf", "q4_k_m", threads=1))
    mixed_path = quantize_gguf(wide_f16, tmp_path / "b.gguf", "q4_k_m+q8emb", threads=1)
    mixed = _types(mixed_path)
    assert plain["token_embd.weight"] == T.Q4_K and plain["output.weight"] == T.Q6_K
    assert mixed["token_embd.weight"] == T.Q8_0 and mixed["output.weight"] == T.Q8_0
    # Everything else is quantized exactly as in plain q4_k_m.
    rest = {k for k in plain if k not in ("token_embd.weight", "output.weight")}
    assert {k: mixed[k] for k in rest} == {k: plain[k] for k in rest}
    assert mixed_path.stat().st_size > (tmp_path / "a.gguf").stat().st_size


def test_importance_matrix_from_training_text_reaches_the_quantizer(
    wide_hf: Path, wide_f16: Path, tmp_path: Path
) -> None:
    from ollama_tune.errors import ExportError
    from ollama_tune.export import quantize_gguf
    from ollama_tune.export.imatrix import compute_imatrix

    texts = ["<|im_start|>user\n返品はできますか？<|im_end|>\n", "送料は全国一律550円です。"]
    imatrix = compute_imatrix(wide_hf, texts)
    # Named as the GGUF tensors, one value per input column, from the converter's name map.
    assert len(imatrix["blk.0.attn_q.weight"]) == 256
    assert len(imatrix["blk.0.ffn_down.weight"]) == 256  # intermediate size
    assert "output.weight" in imatrix
    assert all(v >= 0 for v in imatrix["blk.0.ffn_up.weight"])
    with pytest.raises(ExportError, match="needs an importance matrix"):
        quantize_gguf(wide_f16, tmp_path / "x.gguf", "q4_k_m+imat", threads=1)
    plain = quantize_gguf(wide_f16, tmp_path / "a.gguf", "q4_k_m", threads=1)
    weighted = quantize_gguf(wide_f16, tmp_path / "b.gguf", "q4_k_m+imat", threads=1,
                             imatrix=imatrix)  # fmt: skip
    # Same types and size, different rounding: the quantizer used the importance weights.
    assert _types(weighted) == _types(plain)
    assert weighted.stat().st_size == plain.stat().st_size
    assert weighted.read_bytes() != plain.read_bytes()
