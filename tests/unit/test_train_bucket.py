"""Bucketed packed batches (`train.speed.BucketCollator`): fewer shapes, the same numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from test_train_speed import _cpu_trainer, _loss_grads_tokens

from ollama_tune.train.prefix import SAVED
from ollama_tune.train.speed import BUCKET_PAD, BucketCollator, bucket_batches


def _examples(trainer: Any, n: int) -> list[dict[str, Any]]:
    return [trainer.train_dataset[i] for i in range(n)]


def test_a_batch_is_padded_to_the_multiple_with_one_unlabelled_sequence(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = _cpu_trainer(tiny_model_dir, tmp_path)
    collate = trainer.data_collator
    assert isinstance(collate, BucketCollator) and collate.multiple == 64
    examples = _examples(trainer, len(trainer.train_dataset))
    plain, bucketed = collate.inner(examples), collate(examples)
    n = plain["input_ids"].shape[1]
    extra = -n % 64
    assert extra > 0, n  # the six rows do not fill a multiple of 64 by themselves
    assert bucketed["input_ids"].shape == (1, n + extra) and bucketed[BUCKET_PAD] == extra
    for key in ("input_ids", "labels", "position_ids"):
        assert torch.equal(bucketed[key][:, :n], plain[key]), key
    assert (bucketed["labels"][0, n:] == -100).all()
    assert bucketed["position_ids"][0, n:].tolist() == list(range(extra))
    # One more sequence boundary, not one per padding token as TRL's pad_to_multiple_of makes.
    cuts = plain["cu_seq_lens_q"].tolist()
    assert bucketed["cu_seq_lens_q"].tolist() == [*cuts, n + extra]
    assert bucketed["max_length_q"] == max(plain["max_length_q"], extra)
    assert bucketed["seq_idx"].shape == (1, n + extra)
    assert (bucketed["seq_idx"][0, n:] == len(cuts) - 1).all()


def test_bucketing_changes_no_loss_gradient_or_token_count(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = _cpu_trainer(tiny_model_dir, tmp_path)
    examples = _examples(trainer, len(trainer.train_dataset))
    plain, bucketed = trainer.data_collator.inner(examples), trainer.data_collator(examples)
    model = trainer.model.train()
    ours, theirs = (_loss_grads_tokens(trainer, model, b) for b in (bucketed, plain))
    assert ours[0] == pytest.approx(theirs[0], rel=1e-6)
    for a, b in zip(ours[1], theirs[1], strict=True):
        assert torch.allclose(a, b, atol=1e-7, rtol=1e-5)
    # tokens/s counts the data's tokens: the padding segment is left out.
    assert ours[2] == theirs[2] == plain["input_ids"].numel() + plain.get(SAVED, 0)


def test_bucketing_is_off_at_zero_and_for_batches_that_are_not_padding_free(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = _cpu_trainer(tiny_model_dir, tmp_path)
    inner = trainer.data_collator.inner
    trainer.data_collator = inner
    assert not bucket_batches(trainer, 0) and trainer.data_collator is inner
    padded = BucketCollator(lambda ex: {"input_ids": torch.ones(2, 5, dtype=torch.long)}, 64, 0)
    assert padded([])["input_ids"].shape == (2, 5)  # two padded rows: left as they are
