"""LoRA training on a tiny random llama with SmolLM2's real tokenizer (fast, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ollama_tune.data.model import Example, Message, SourceRef
from ollama_tune.errors import TrainingError, UsageError
from ollama_tune.train import TrainConfig, train_lora

QUESTIONS = [
    ("送料はいくらですか？", "全国一律550円です。5000円以上のご注文で送料無料になります。"),
    ("返品はできますか？", "商品到着後14日以内であれば返品を承っております。"),
    ("支払い方法は？", "クレジットカード、コンビニ払い、銀行振込がご利用いただけます。"),
    ("営業時間を教えてください", "平日10時から18時まで営業しております。"),
    ("注文をキャンセルしたい", "発送前であればマイページからキャンセルできます。"),
    ("領収書は発行できますか？", "マイページの注文履歴から領収書をダウンロードできます。"),
]


def write_qa(path: Path, n: int = 24) -> Path:
    rows = []
    for i in range(n):
        q, a = QUESTIONS[i % len(QUESTIONS)]
        rows.append({"question": f"{q}（{i}）", "answer": a})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    return write_qa(tmp_path / "qa.jsonl")


def tiny_config(data: Path, base: Path, out: Path, **kw: object) -> TrainConfig:
    defaults: dict[str, object] = {
        "data": [data],
        "base_model": str(base),
        "output": out,
        "max_steps": 6,
        "save_steps": 2,
        "batch_size": 2,
        "max_seq_len": 80,
        # A hidden-16 random model moves slowly; a large step keeps the test to a dozen steps.
        "learning_rate": 0.1,
        "lora_alpha": 64,
        "lora_dropout": 0.1,
    }
    return TrainConfig(**(defaults | kw))  # type: ignore[arg-type]


def test_loss_mask_covers_exactly_the_answer_and_its_end_of_turn(smol_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    from ollama_tune.train.data import encode_rows, with_system

    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    answer = "はい、14日以内なら返品できます。\n詳しくはマイページへ。"
    ex = Example(
        (Message("user", "返品できますか？"), Message("assistant", answer)), SourceRef("t.jsonl", 1)
    )
    for system, expected_system in (
        (None, "SmolLM"),
        ("あなたはサポート担当です。", "サポート担当"),
    ):
        row = encode_rows(tok, with_system([ex], system), 256).rows[0]
        trained = [
            t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100
        ]
        assert tok.decode(trained) == answer + "<|im_end|>"
        assert trained[-1] == tok.convert_tokens_to_ids("<|im_end|>")
        # Nothing after the end-of-turn token (ChatML's newline) is in the sequence at all.
        assert row["input_ids"][-1] == trained[-1]
        prompt = tok.decode(
            [t for t, la in zip(row["input_ids"], row["labels"], strict=True) if la == -100]
        )
        assert expected_system in prompt
        assert prompt.endswith("<|im_start|>assistant\n")


def test_overlong_rows_keep_the_answer_and_report_the_cut(smol_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    from ollama_tune.train.data import encode_rows

    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    ex = Example(
        (Message("user", "長い質問 " * 200), Message("assistant", "短い答え")),
        SourceRef("t.jsonl", 7),
    )
    enc = encode_rows(tok, [ex], 64)
    row = enc.rows[0]
    assert len(row["input_ids"]) == 64
    trained = [t for t, la in zip(row["input_ids"], row["labels"], strict=True) if la != -100]
    assert tok.decode(trained) == "短い答え<|im_end|>"
    assert enc.truncated == 1 and "max-seq-len 64" in enc.notes[0]


def test_training_writes_the_run_directory_and_loss_falls(
    qa_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    seen: list[tuple[str, float, float | None]] = []
    logs: list[dict[str, object]] = []
    cfg = tiny_config(qa_file, tiny_model_dir, tmp_path / "run", max_steps=12, save_steps=6)
    result = train_lora(cfg, progress=lambda d, c, t: seen.append((d, c, t)), on_log=logs.append)

    run = tmp_path / "run"
    assert (run / "adapter" / "adapter_config.json").is_file()
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    assert (run / "tokenizer" / "tokenizer_config.json").is_file()
    assert (run / "checkpoints" / "checkpoint-6").is_dir()
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((run / "run.json").read_text("utf-8"))
    assert doc["schema"] == 1
    assert set(doc["base_model"]) == {"spec", "kind", "hf_dir", "source_path", "sha256"}
    assert doc["base_model"]["kind"] == "hf_dir"
    assert "<|im_start|>" in doc["chat_template"] and doc["stop_tokens"] == ["<|im_end|>"]
    assert doc["data"]["train_rows"] + doc["data"]["test_rows"] == 24
    assert doc["data"]["train_rows"] == len(
        Path(doc["data"]["train_path"]).read_text().splitlines()
    )
    assert doc["config"]["lora_r"] == 8 and doc["config"]["max_steps"] == 12
    assert doc["config"]["attention"] == "ollama_tune_packed_sdpa"  # the CPU speed paths ran
    assert doc["config"]["loss"] == "compact"
    assert set(doc["versions"]) >= {"torch", "transformers", "peft", "trl", "ollama_tune"}
    assert doc["metrics"]["steps"] == 12 == result.steps
    assert doc["metrics"]["tokens_per_s"] > 0 and doc["metrics"]["peak_rss_mb"] > 0

    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.02, losses
    assert any("eval_loss" in r for r in records) and result.eval_loss is not None
    assert seen[-1] == ("training", 12, 12)
    assert any("loss" in r and r["tokens_per_s"] for r in logs)


def test_resume_after_interrupt_matches_an_uninterrupted_run(
    qa_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    full = train_lora(tiny_config(qa_file, tiny_model_dir, tmp_path / "full"))

    def kill_at_step_3(desc: str, done: float, total: float | None) -> None:
        if done >= 3:  # a Ctrl-C after checkpoint-2 was written, mid-way to the next one
            raise KeyboardInterrupt

    cut = tiny_config(qa_file, tiny_model_dir, tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        train_lora(cut, progress=kill_at_step_3)
    assert not (tmp_path / "cut" / "adapter").exists()
    resumed = train_lora(tiny_config(qa_file, tiny_model_dir, tmp_path / "cut", resume=True))

    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("checkpoint-2")
    a = load_file(str(full.adapter_dir / "adapter_model.safetensors"))
    b = load_file(str(resumed.adapter_dir / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max().item() < 1e-6, key

    def losses(run: Path) -> list[tuple[int, float]]:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [(r["step"], round(r["loss"], 5)) for r in rows if "loss" in r]

    assert losses(tmp_path / "cut") == losses(tmp_path / "full")
    assert len(losses(tmp_path / "full")) == 6


def test_qlora_without_cuda_is_a_clear_error(
    qa_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the CPU refusal is not reachable")
    with pytest.raises(TrainingError) as err:
        train_lora(tiny_config(qa_file, tiny_model_dir, tmp_path / "q", qlora=True))
    assert "CUDA" in err.value.message and "--qlora" in (err.value.hint or "")


def test_invalid_settings_are_all_reported_at_once(tmp_path: Path) -> None:
    # Field values fail as the config is built, before any training starts.
    with pytest.raises(UsageError) as err:
        train_lora(TrainConfig(data=[], lora_r=0, learning_rate=-1.0, lora_dropout=1.5))
    msg = err.value.message
    for flag in ("--data", "--lora-r", "--learning-rate", "--lora-dropout"):
        assert flag in msg


def test_cli_train_runs_end_to_end(
    qa_file: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ollama_tune.cli import main

    out = tmp_path / "cli-run"
    argv = [
        "train",
        "--data",
        str(qa_file),
        "--base-model",
        str(tiny_model_dir),
        "--output",
        str(out),
    ]
    argv += ["--max-steps", "2", "--save-steps", "2", "--batch-size", "2", "--max-seq-len", "64"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--json"])
    assert exit_.value.code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 2 and printed["run_dir"] == str(out)
    record = json.loads((out / "run.json").read_text())
    assert record["metrics"]["steps"] == 2
    # It trained in its own process, started on jemalloc where the system has it.
    from ollama_tune.train.allocator import find_jemalloc

    assert record["config"]["allocator"] == ("jemalloc" if find_jemalloc() else "system")
    # The CPU speed paths that ran, for comparing runs' tokens/s.
    assert record["config"]["shared_prefix"] is True
    assert record["config"]["fused_mlps"] == 2  # both layers of the tiny llama (train.fused_mlp)
    assert record["config"]["recomputed_norms"] == 5  # 2 per layer + the final one
    assert record["config"]["attention"] == "ollama_tune_packed_sdpa"
    # LoRA in bf16 keeps the frozen base weights in bf16 (train.fused_lora.store_frozen_base).
    frozen = "bfloat16" if record["config"]["precision"] == "bf16" else "float32"
    assert record["config"]["frozen_base_dtype"] == frozen


def test_cli_reports_bad_flags_with_exit_code_2(
    qa_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ollama_tune.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", str(qa_file), "--lora-r", "0", "--batch-size", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--lora-r" in err and "--batch-size" in err


def test_a_second_run_into_the_same_directory_needs_resume(
    qa_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "run" / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    with pytest.raises(TrainingError, match="checkpoint-4") as err:
        train_lora(tiny_config(qa_file, tiny_model_dir, tmp_path / "run"))
    assert "--resume" in (err.value.hint or "")


def test_early_stopping_keeps_the_best_checkpoint_and_checks_step_alignment(tmp_path: Path) -> None:
    from ollama_tune.train.loop import Plan
    from ollama_tune.train.trainer import sft_args

    plan = Plan(False, False, False, False, False, False, 0, 1)
    cfg = TrainConfig(data=[tmp_path], output=tmp_path, early_stopping_patience=2, save_steps=4)
    args = sft_args(cfg.model_copy(update={"eval_steps": 2}), plan, has_eval=True)
    assert args.load_best_model_at_end and args.metric_for_best_model == "eval_loss"
    assert args.eval_steps == 2 and args.save_steps == 4 and args.use_cpu
    with pytest.raises(UsageError, match="multiple of --eval-steps 3"):
        sft_args(cfg.model_copy(update={"eval_steps": 3}), plan, has_eval=True)
    assert not sft_args(cfg, plan, has_eval=False).load_best_model_at_end


def test_packed_rows_do_not_attend_to_each_other(tiny_model_dir: Path) -> None:
    """Padding-free packing must give each row the logits it gets alone (no cross-row leak)."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    rows = [{"input_ids": list(range(100, 117))}, {"input_ids": list(range(300, 311))}]
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(rows)
    assert batch["input_ids"].shape == (1, 28) and "attention_mask" not in batch
    with torch.no_grad():
        ids, pos = batch["input_ids"], batch["position_ids"]
        # use_cache=False as in training: with a cache transformers ignores packed position_ids.
        packed = model(input_ids=ids, position_ids=pos, use_cache=False).logits
        alone = model(input_ids=torch.tensor([rows[1]["input_ids"]]), use_cache=False).logits
    assert torch.allclose(packed[0, 17:], alone[0], atol=1e-5)
