"""Shared-prefix batches (`train.prefix`): the common head once, the same loss and gradients."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_train_speed import _cpu_trainer, _loss_grads_tokens

from ollama_tune.train import prefix
from ollama_tune.train.prefix import (
    PREFIX,
    SAVED,
    SharedPrefixCollator,
    common_prefix,
    share_prefix,
    shares_prefixes,
)

SYSTEM = "あなたはオンラインストアのカスタマーサポート担当です。丁寧に答えてください。"


def _trl_batch(rows: list[list[int]], labels: list[list[int]]) -> dict[str, Any]:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collate = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    examples = [{"input_ids": r, "labels": lab} for r, lab in zip(rows, labels, strict=True)]
    return collate(examples)  # type: ignore[no-any-return]


def _rows_of(batch: dict[str, Any], key: str) -> list[list[int]]:
    cuts = batch["cu_seq_lens_q"].tolist()
    flat = batch[key][0].tolist()
    return [flat[s:e] for s, e in itertools.pairwise(cuts)]


def _chain(collate: Any) -> SharedPrefixCollator:
    while not isinstance(collate, SharedPrefixCollator):
        collate = collate.inner
    return collate


def test_the_common_head_is_kept_once_and_every_row_is_rebuilt_from_it(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = _cpu_trainer(tiny_model_dir, tmp_path, system=SYSTEM)
    sharing = _chain(trainer.data_collator)
    examples = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    raw, shared = sharing.inner(examples), sharing(examples)
    p = shared[PREFIX]
    rows = _rows_of(raw, "input_ids")
    assert p >= len(trainer.processing_class(SYSTEM)["input_ids"])  # the whole system prompt
    assert shared[SAVED] == p * (len(rows) - 1)
    assert shared["input_ids"].shape[1] == raw["input_ids"].shape[1] - shared[SAVED]
    head, *tails = _rows_of(shared, "input_ids")
    assert len(head) == p and [head + t for t in tails] == rows
    # Labels and positions of every row's own tokens are unchanged; the head is unscored.
    raw_labels, (head_labels, *tail_labels) = _rows_of(raw, "labels"), _rows_of(shared, "labels")
    assert set(head_labels) == {-100}
    assert [r[p:] for r in raw_labels] == tail_labels
    assert all(set(r[: p + 1]) == {-100} for r in raw_labels)
    positions = _rows_of(shared, "position_ids")
    assert positions[0] == list(range(p))
    assert all(pos == list(range(p, p + len(pos))) for pos in positions[1:])
    assert shared["max_length_q"] == max(len(r) for r in [head, *tails])
    assert shared["seq_idx"][0].tolist() == [i for i, r in enumerate([head, *tails]) for _ in r]


@pytest.mark.parametrize("training", [True, False], ids=["fused-head", "logits"])
def test_sharing_changes_no_loss_gradient_or_token_count(
    tiny_model_dir: Path, tmp_path: Path, training: bool
) -> None:
    trainer = _cpu_trainer(tiny_model_dir, tmp_path, system=SYSTEM)
    sharing = _chain(trainer.data_collator)
    examples = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    raw, shared = sharing.inner(examples), sharing(examples)
    assert shared[PREFIX] > 0
    model = trainer.model.train(training)
    ours, theirs = (_loss_grads_tokens(trainer, model, b) for b in (shared, raw))
    assert ours[0] == pytest.approx(theirs[0], rel=1e-6)
    for a, b in zip(ours[1], theirs[1], strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    # tokens/s counts every row's tokens, the shared head once per row.
    assert ours[2] == theirs[2] == raw["input_ids"].numel()


def test_logits_of_shared_rows_equal_each_row_alone(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    from ollama_tune.train import speed

    reference = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    assert speed.use_packed_attention(model)
    head = list(range(200, 230))
    rows = [head + list(range(300, 317)), [*head, 5, 6], head + list(range(400, 441))]
    labels = [[-100] * 31 + r[31:] for r in rows]
    raw = _trl_batch(rows, labels)
    p = common_prefix(raw)
    assert p == 30  # position 30 predicts a scored token: the head stops before it
    shared = share_prefix(raw, p)
    feed = {k: v for k, v in shared.items() if k not in ("labels", SAVED)}
    with torch.no_grad():
        got = model(**feed, use_cache=False).logits[0]
        start = p
        for row in rows:
            alone = reference(input_ids=torch.tensor([row]), use_cache=False).logits[0]
            own = len(row) - p
            assert torch.allclose(got[start : start + own], alone[p:], atol=1e-5)
            start += own
        assert torch.allclose(got[:p], alone[:p], atol=1e-5)


def test_no_sharing_where_rows_differ_early_are_alone_or_scored_early() -> None:
    def unscored(*rows: list[int]) -> dict[str, Any]:
        return _trl_batch(list(rows), [[-100] * len(r) for r in rows])

    head = list(range(50, 70))
    assert common_prefix(unscored([*head, 1, 2], head[:5] + [9] * 20)) == 0
    assert common_prefix(unscored([*head, 1, 2])) == 0  # one row
    # A label inside the head: the head ends where the first scored prediction is made.
    scored = [-100] * 12 + [7] * 10
    assert common_prefix(_trl_batch([[*head, 1, 2], [*head, 3]], [scored, [-100] * 21])) == 11
    # Every row keeps one token of its own even when one row is all head.
    assert common_prefix(unscored(head, [*head, 4, 4])) == 19
    padded = {"input_ids": torch.ones(2, 5, dtype=torch.long)}
    assert SharedPrefixCollator(lambda ex: padded)([]) is padded


@settings(max_examples=60, deadline=None)
@given(
    head=st.lists(st.integers(1, 40), min_size=0, max_size=30),
    tails=st.lists(st.lists(st.integers(1, 40), min_size=1, max_size=12), min_size=1, max_size=5),
    first_scored=st.lists(st.integers(0, 45), min_size=5, max_size=5),
)
def test_any_batch_is_rebuilt_exactly_and_no_scored_prediction_is_shared(
    head: list[int], tails: list[list[int]], first_scored: list[int]
) -> None:
    rows = [head + t for t in tails]
    labels = [
        [-100 if i < f else tok for i, tok in enumerate(r)]
        for r, f in zip(rows, first_scored, strict=False)
    ]
    raw = _trl_batch(rows, labels)
    p = common_prefix(raw)
    if not p:
        return
    assert p >= prefix.MIN_PREFIX
    shared = share_prefix(raw, p)
    h, *own = _rows_of(shared, "input_ids")
    assert [h + t for t in own] == _rows_of(raw, "input_ids")
    assert all(len(t) >= 1 for t in own)
    raw_labels = _rows_of(raw, "labels")
    assert all(set(r[: p + 1]) == {-100} for r in raw_labels)
    assert [r[p:] for r in raw_labels] == _rows_of(shared, "labels")[1:]


def test_run_json_and_the_switch(tiny_model_dir: Path, tmp_path: Path) -> None:
    trainer = _cpu_trainer(tiny_model_dir, tmp_path, system=SYSTEM)
    assert shares_prefixes(trainer.data_collator)
    inner = _chain(trainer.data_collator).inner
    assert not shares_prefixes(inner)
    prefix.SHARE = False
    try:
        assert not prefix.share_prefixes(trainer)
    finally:
        prefix.SHARE = True
