"""Checks that need no model run in `TrainConfig.validate()`, before the base model is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from _cli import run_cli


def _train(capsys: pytest.CaptureFixture[str], tmp_path: Path, *flags: str) -> tuple[int, str]:
    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "q", "output": "a"}\n', encoding="utf-8")
    # A base that does not exist: reaching the model would fail with a different message.
    missing = str(tmp_path / "no-such-model.gguf")
    code, out, err = run_cli(capsys, "train", "--data", str(data), "--base-model", missing, *flags)
    return code, " ".join((out + err).split())


def test_save_steps_off_the_eval_steps_fail_before_the_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ("--early-stopping-patience", "2", "--no-val-recall", "--eval-steps", "3")
    code, text = _train(capsys, tmp_path, *flags, "--save-steps", "5")
    assert code == 2, text
    assert "--save-steps 5 must be a multiple of --eval-steps 3" in text
    assert "no-such-model" not in text
    # Aligned steps pass validation and the run goes on to the (missing) base model.
    code, text = _train(capsys, tmp_path, *flags, "--save-steps", "6")
    assert code != 0 and "multiple of" not in text and "no-such-model" in text


def test_recall_based_early_stopping_needs_no_step_alignment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # With --val-recall the callback keeps the best weights itself: any save step works.
    flags = ("--early-stopping-patience", "2", "--eval-steps", "3", "--save-steps", "5")
    code, text = _train(capsys, tmp_path, *flags)
    assert code != 0 and "multiple of" not in text and "no-such-model" in text
