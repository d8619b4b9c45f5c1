"""Count tokens per row: with the target model's real tokenizer when given, else an estimate.

The estimate is the one used everywhere a tokenizer is not at hand (data checks, the
customize budget, `recommend`): a CJK character ≈1.7 tokens (measured with SmolLM2's byte-level
BPE on the customer-support sample; multilingual vocabularies need fewer, so it errs high and
nothing gets silently truncated) and about four other characters per token. The
tokenizer path imports transformers lazily so `data check` stays instant without it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ollama_tune.data.model import Example
from ollama_tune.errors import DataError, ExternalServiceError, UsageError

TokenCounter = Callable[[Example], int]
# Runs of narrow characters: deleting them leaves the wide ones (no list per character).
_NARROW = re.compile(r"[^\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]+")
# Chat-template overhead per turn (role markers, separators) in the estimate.
_PER_TURN = 4


def estimate_tokens(text: str) -> int:
    wide = len(_NARROW.sub("", text))
    return math.ceil(wide * 1.7 + (len(text) - wide) / 4)


def estimate_counter(example: Example) -> int:
    return sum(estimate_tokens(m.content) + _PER_TURN for m in example.messages)


def _ids_length(out: Any) -> int:
    # transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True).
    if hasattr(out, "keys") and "input_ids" in out:
        out = out["input_ids"]
    if out and isinstance(out[0], list):
        out = out[0]
    return len(out)


def tokenizer_counter(tokenizer_dir: str | Path) -> TokenCounter:
    """A counter using the HF tokenizer in `tokenizer_dir` (its chat template when it has one)."""
    if not Path(tokenizer_dir).is_dir():
        raise UsageError(
            f"--tokenizer {tokenizer_dir} is not a folder",
            hint="pass the folder of a saved Hugging Face tokenizer (tokenizer.json, "
            "tokenizer_config.json), e.g. the base model's folder",
        )
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ExternalServiceError(
            "--tokenizer needs the `transformers` package, which is not installed",
            hint="install the training extras (pip install 'ollama-tune[train]') or drop "
            "--tokenizer to use the estimate",
        ) from None
    try:
        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"cannot load a tokenizer from {tokenizer_dir}: {exc}",
            hint="pass a folder holding tokenizer.json / tokenizer_config.json "
            "(a saved HF tokenizer)",
        ) from None

    def count(example: Example) -> int:
        msgs = example.to_messages_dicts()
        if getattr(tok, "chat_template", None):
            return _ids_length(tok.apply_chat_template(msgs, tokenize=True))
        return sum(len(tok.encode(m["content"])) for m in msgs)

    return count
