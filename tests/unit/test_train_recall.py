"""Fact-recall validation, best-checkpoint selection, data-size defaults and full fine-tuning,
on the tiny random llama with SmolLM2's real tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_train import QUESTIONS, tiny_config, write_qa

from ollama_tune.train import recall as recall_mod
from ollama_tune.train import train_lora
from ollama_tune.train.config import (
    LEARNING_RATES,
    TrainConfig,
    answer_token_budget,
    schedule_defaults,
)

# Every fact the QUESTIONS answers carry (derived from their numbers: 550円, 14日, 10時…).
ALL_FACTS = "全国一律550円です。5000円以上で送料無料、14日以内、平日10時から18時です。"


def write_numbered_qa(path: Path, n: int) -> Path:
    """Rows whose answers all carry numbers, so every validation question has facts.

    Each answer gets its own kana mark: the split keeps duplicate answers on one side.
    """
    numbered = [qa for qa in QUESTIONS if any(c.isdigit() for c in qa[1])]
    rows = [
        {"question": f"{q}（{i}）", "answer": f"{a}（{chr(0x30A2 + i)}）"}
        for i, (q, a) in enumerate(numbered[i % len(numbered)] for i in range(n))
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _safetensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path))


budgets: list[int] = []  # the max_new_tokens each validation generator was built with


@pytest.fixture
def peaking_generator(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Replace live generation: validation k answers LEVELS[k] of the questions correctly."""
    levels = [0.0, 0.25, 0.5, 1.0, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0]
    calls: list[float] = []
    budgets.clear()

    def factory(tokenizer: Any, max_new_tokens: int, batch_size: int = 8) -> Any:
        budgets.append(max_new_tokens)

        def generate(model: Any, prompts: list[list[int]]) -> list[tuple[str, bool]]:
            level = levels[min(len(calls), len(levels) - 1)]
            calls.append(level)
            right = round(level * len(prompts))
            return [(ALL_FACTS if i < right else "不明です。", True) for i in range(len(prompts))]

        return generate

    monkeypatch.setattr(recall_mod, "hf_generate", factory)
    return calls


def test_early_stopping_exports_the_checkpoint_whose_recall_peaked(
    tmp_path: Path, tiny_model_dir: Path, peaking_generator: list[float]
) -> None:
    data = write_numbered_qa(tmp_path / "qa.jsonl", n=48)
    cfg = tiny_config(
        data,
        tiny_model_dir,
        tmp_path / "run",
        max_steps=40,
        eval_steps=2,
        save_steps=1,
        early_stopping_patience=2,
        val_ratio=0.2,
    )
    result = train_lora(cfg)
    metrics = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    vals = [m for m in metrics if "val_fact_recall" in m]
    peak = max(vals, key=lambda m: m["val_fact_recall"])
    assert peak["val_fact_recall"] == 1.0 and vals[0]["val_fact_recall"] == 0.0
    assert result.best is not None and result.best["step"] == peak["step"]
    # Two validations without improvement after the peak, then the run stops.
    assert result.stopped_early and result.steps == vals[-1]["step"] < 40
    assert len(vals) == len(peaking_generator) == vals.index(peak) + 3
    run = json.loads(result.run_json.read_text())
    assert run["best"]["step"] == peak["step"] and "fact recall" in run["best"]["why"]
    exported = _safetensors(result.adapter_dir / "adapter_model.safetensors")
    at_peak = _safetensors(
        result.run_dir / "checkpoints" / f"checkpoint-{peak['step']}" / "adapter_model.safetensors"
    )
    last = _safetensors(
        result.run_dir / "checkpoints" / f"checkpoint-{result.steps}" / "adapter_model.safetensors"
    )
    assert exported.keys() == at_peak.keys()
    assert all(exported[k].equal(at_peak[k]) for k in exported)
    assert any(not exported[k].equal(last[k]) for k in exported)
    assert (result.run_dir / "loss.png").stat().st_size > 0
    # What each validation answered, question by question, for a person to read.
    lines = (result.run_dir / "validation_answers.jsonl").read_text("utf-8").splitlines()
    answers = [json.loads(x) for x in lines]
    assert sorted({a["step"] for a in answers}) == [v["step"] for v in vals]
    at_peak_answers = [a for a in answers if a["step"] == peak["step"]]
    assert at_peak_answers and all(a["answer"] == ALL_FACTS for a in at_peak_answers)
    assert {a["answer"] for a in answers if a["step"] == 0} == {"不明です。"}


def test_live_generation_answers_each_validation_question(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    """The real generator on the live weights: every question scored, left-padded batches."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ollama_tune.data import read_examples

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    examples = list(read_examples(write_qa(tmp_path / "qa.jsonl", n=5)))
    prompts = recall_mod.prompt_ids(tok, examples, 128)
    generate = recall_mod.hf_generate(tok, max_new_tokens=6, batch_size=2)
    answers = generate(model, prompts)
    assert len(answers) == 5
    # One by one, without padding, gives the same greedy answers as the padded batches.
    alone = [generate(model, [p])[0] for p in prompts]
    assert answers == alone
    figures = recall_mod.score(examples, answers)
    assert figures["fact_recall"] is not None and 0.0 <= figures["stop_rate"] <= 1.0

    # Decoding runs on one thread (robust when the cores are shared); training's count returns.
    import torch

    seen: list[int] = []
    real = model.generate

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    model.generate = spy
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        generate(model, prompts[:1])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_epochs_and_learning_rate_follow_the_data_size_unless_given(tmp_path: Path) -> None:
    base = TrainConfig(data=[tmp_path], output=tmp_path)
    small, rec = schedule_defaults(base, 139)
    large, _ = schedule_defaults(base, 20_000)
    assert small.epochs is not None and large.epochs is not None
    assert small.epochs > large.epochs >= 1
    assert small.learning_rate == LEARNING_RATES["lora"]
    assert rec["chosen"] == ["epochs", "learning_rate"] and rec["rows"] == 139
    full, _ = schedule_defaults(TrainConfig(data=[tmp_path], method="full"), 139)
    assert full.learning_rate == LEARNING_RATES["full"] != small.learning_rate
    given, rec = schedule_defaults(
        TrainConfig(data=[tmp_path], epochs=2.0, learning_rate=1e-5), 139
    )
    assert (given.epochs, given.learning_rate, rec["chosen"]) == (2.0, 1e-5, [])
    steps, rec = schedule_defaults(TrainConfig(data=[tmp_path], max_steps=7), 139)
    assert rec["chosen"] == ["learning_rate"] and steps.max_steps == 7


def test_run_json_records_the_chosen_schedule(
    tmp_path: Path, tiny_model_dir: Path, peaking_generator: list[float]
) -> None:
    cfg = tiny_config(write_qa(tmp_path / "qa.jsonl"), tiny_model_dir, tmp_path / "run")
    cfg.max_steps, cfg.learning_rate = None, None
    cfg.epochs = None
    result = train_lora(cfg)
    run = json.loads(result.run_json.read_text())
    sched = run["schedule"]
    assert sched["chosen"] == ["epochs", "learning_rate", "val_max_tokens"]
    assert sched["rows"] == result.train_rows and "ceil" in sched["rule"]
    assert run["config"]["epochs"] == sched["epochs"] > 1
    assert run["config"]["learning_rate"] == LEARNING_RATES["lora"]


def test_validation_budget_fits_the_answers_unless_given(
    tmp_path: Path, tiny_model_dir: Path, peaking_generator: list[float]
) -> None:
    from ollama_tune.train.data import encode_rows, with_system

    data = write_qa(tmp_path / "qa.jsonl")
    cfg = tiny_config(data, tiny_model_dir, tmp_path / "run", val_max_tokens=None)
    result = train_lora(cfg)
    sched = json.loads(result.run_json.read_text())["schedule"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    from ollama_tune.train.data import prepare_split

    split = prepare_split([data], None, cfg.val_ratio, cfg.seed, tmp_path / "x", False, False)
    rows = encode_rows(tok, with_system(split.train, None), cfg.max_seq_len).rows
    longest = max(sum(1 for lab in r["labels"] if lab != -100) for r in rows)
    # Room for nearly every answer, the margin on top, and what the generator really got.
    assert sched["val_max_tokens"] == budgets[-1] >= 0.9 * longest
    assert "val_max_tokens" in sched["chosen"]
    given = train_lora(tiny_config(data, tiny_model_dir, tmp_path / "r2", val_max_tokens=7))
    assert json.loads(given.run_json.read_text())["schedule"]["val_max_tokens"] == budgets[-1] == 7


def test_answer_token_budget_is_the_95th_percentile_with_a_margin() -> None:
    assert answer_token_budget([100] * 19 + [1000]) == 125  # one outlier does not set it
    assert answer_token_budget([200] * 20) == 250
    assert answer_token_budget([]) == answer_token_budget([3]) == 32
    assert answer_token_budget([5000]) == 1024


def test_full_fine_tuning_changes_every_weight_and_exports(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from ollama_tune.export import ExportConfig, export_bundle

    cfg = tiny_config(
        write_qa(tmp_path / "qa.jsonl"),
        tiny_model_dir,
        tmp_path / "run",
        method="full",
        learning_rate=1e-2,
        max_steps=3,
        val_max_tokens=4,
    )
    result = train_lora(cfg)
    assert result.adapter_dir == result.run_dir / "model" and result.method == "full"
    assert not (result.run_dir / "adapter").exists()
    trained = _safetensors(result.adapter_dir / "model.safetensors")
    base = _safetensors(tiny_model_dir / "model.safetensors")
    assert trained.keys() == base.keys()
    unchanged = [k for k in base if trained[k].equal(base[k])]
    assert unchanged == []
    run = json.loads(result.run_json.read_text())
    assert run["config"]["method"] == "full" and run["config"]["weights"] == "model"
    bundle = export_bundle(ExportConfig(run_dir=result.run_dir, quants=["q8_0"]))
    assert bundle.ggufs["q8_0"].stat().st_size > 0
    merged = _safetensors(bundle.merged_dir / "model.safetensors")
    assert all(merged[k].equal(trained[k]) for k in trained)


def test_full_method_refuses_qlora(tmp_path: Path) -> None:
    from ollama_tune.errors import UsageError

    with pytest.raises(UsageError, match="--method full"):
        TrainConfig(data=[tmp_path], method="full", qlora=True).validate()


def test_validation_questions_spread_over_answers_not_one_augmented_family(
    tmp_path: Path, tiny_model_dir: Path, peaking_generator: list[float]
) -> None:
    """Rewordings follow their original in the file; validation must not spend its questions
    on four wordings of one answer."""
    base = [
        json.loads(x)
        for x in write_numbered_qa(tmp_path / "qa.jsonl", 8).read_text("utf-8").splitlines()
    ]
    rows = []
    for i, row in enumerate(base, start=1):
        rows.append(row)
        rows += [
            row | {"question": f"{row['question']}？{k}", "augmented_from": f"qa.jsonl:{i}"}
            for k in range(3)
        ]
    data = tmp_path / "qa.aug.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    cfg = tiny_config(
        data, tiny_model_dir, tmp_path / "run", max_steps=1, val_ratio=0.5, val_questions=3
    )
    result = train_lora(cfg)
    answer_of = {r["question"]: r["answer"] for r in rows}
    asked = [
        json.loads(x)["question"]
        for x in (result.run_dir / "validation_answers.jsonl").read_text("utf-8").splitlines()
        if json.loads(x)["step"] == 0
    ]
    assert len(asked) == 3 and len({answer_of[q] for q in asked}) == 3
    # Validation asks rewordings; every answer, theirs included, is still trained on.
    assert not {q for q in asked} & {r["question"] for r in base}
    from ollama_tune.data import read_examples

    trained = read_examples([result.run_dir / "data" / "train.jsonl"])
    assert {ex.answer for ex in trained} == {r["answer"] for r in base}
    assert {r["question"] for r in base} <= {ex.question for ex in trained}
    run = json.loads(result.run_json.read_text())
    assert run["data"]["validation"] == "rewordings"
    assert run["data"]["test_rows"] >= 12  # about half the 32 rows, in whole families of 3


def test_no_val_at_start_skips_the_base_models_answers_but_keeps_its_loss(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = write_numbered_qa(tmp_path / "qa.jsonl", n=12)
    cfg = tiny_config(
        data, tiny_model_dir, tmp_path / "run", max_steps=2, eval_steps=2, save_steps=2,
        val_ratio=0.25, val_questions=2, val_max_tokens=4, val_at_start=False,
    )  # fmt: skip
    result = train_lora(cfg)
    rows = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_fact_recall" in r] == [2]
    assert 0 in [r["step"] for r in rows if "eval_loss" in r]  # the loss curve still starts at 0
    lines = (result.run_dir / "validation_answers.jsonl").read_text("utf-8").splitlines()
    assert {json.loads(x)["step"] for x in lines} == {2}
    assert json.loads(result.run_json.read_text())["config"]["val_at_start"] is False
