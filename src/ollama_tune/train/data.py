"""Training data: read and split the user's rows, then tokenize them for the loss we want.

Rows become conversational prompt/completion pairs (`{"prompt": [...], "completion":
[{"role": "assistant", ...}]}`). We tokenize them ourselves with the model's chat template
rather than letting TRL do it, because TRL's completion mask also covers whatever the template
prints after the end-of-turn token (ChatML's trailing newline). Here the loss covers exactly the
answer and its end-of-turn token, which is what teaches a model to stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune._util import sha256_text
from ollama_tune.data.model import Example, Message, SourceRef
from ollama_tune.errors import DataError, TrainingError


@dataclass
class SplitData:
    train: list[Example]
    test: list[Example]
    train_path: Path
    test_path: Path
    sha256: str


@dataclass
class EncodedRows:
    rows: list[dict[str, list[int]]]
    tokens: int
    truncated: int
    notes: list[str] = field(default_factory=list)


def prepare_split(
    data: list[Path],
    test_data: Path | None,
    test_ratio: float,
    seed: int,
    run_dir: Path,
    resume: bool,
    write: bool = True,
) -> SplitData:
    """Read + split the data; write the exact split to RUN_DIR/data/ (reused on resume).

    `write=False` on DDP ranks other than 0: they compute the same split but never write.
    """
    train_path, test_path = run_dir / "data" / "train.jsonl", run_dir / "data" / "test.jsonl"
    if resume and train_path.is_file() and test_path.is_file():
        # The same rows in the same order as before the interruption, even if the source changed.
        train, test = _read_examples([train_path]), _read_examples([test_path])
    else:
        train = _read_examples(data)
        if test_data is not None:
            test = _read_examples([test_data])
        else:
            train, test = _split_examples(train, test_ratio, seed)
        if write:
            _write_jsonl(train, train_path)
            _write_jsonl(test, test_path)
    if not train:
        raise DataError(f"No training rows in {', '.join(map(str, data))}.", hint="Add rows.")
    digest = sha256_text(
        json.dumps([[ex.to_messages_dicts() for ex in part] for part in (train, test)])
    )
    return SplitData(train, test, train_path, test_path, digest)


def with_system(examples: list[Example], system: str | None) -> list[Example]:
    """Add `system` to rows without one; otherwise the chat template's default applies."""
    if not system:
        return examples
    out = []
    for ex in examples:
        if ex.system is None:
            msgs = (Message("system", system), *ex.messages)
            ex = Example(msgs, ex.source, ex.facts, ex.extra)
        out.append(ex)
    return out


def to_prompt_completion(ex: Example) -> dict[str, Any]:
    """The conversational prompt/completion record TRL documents for completion-only loss."""
    return {
        "prompt": [m.to_dict() for m in ex.prompt_messages],
        "completion": [{"role": "assistant", "content": ex.answer}],
    }


def end_of_turn(tokenizer: Any) -> str:
    """The token the template writes after an assistant answer (`<|im_end|>` for ChatML)."""
    probe = "ollama-tune-probe"
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": probe}]
    text = tokenizer.apply_chat_template(msgs, tokenize=False)
    suffix = text[text.rindex(probe) + len(probe) :]
    return _special_prefix(tokenizer, suffix) or tokenizer.eos_token


def encode_rows(tokenizer: Any, examples: list[Example], max_seq_len: int) -> EncodedRows:
    """Tokenize every row into `input_ids` + `labels` (-100 outside answer + end-of-turn)."""
    eot = end_of_turn(tokenizer)
    rows, tokens, truncated = [], 0, 0
    for ex in examples:
        row = encode_one(tokenizer, to_prompt_completion(ex), eot, max_seq_len, ex.source)
        truncated += row.pop("_truncated", [0])[0]
        rows.append(row)
        tokens += len(row["input_ids"])
    notes = []
    if truncated:
        notes.append(f"{truncated} row(s) longer than --max-seq-len {max_seq_len} were cut")
    return EncodedRows(rows, tokens, truncated, notes)


def encode_one(
    tokenizer: Any, record: dict[str, Any], eot: str, max_seq_len: int, source: SourceRef
) -> dict[str, list[int]]:
    prompt_text = tokenizer.apply_chat_template(
        record["prompt"], tokenize=False, add_generation_prompt=True
    )
    full_text = tokenizer.apply_chat_template(
        record["prompt"] + record["completion"], tokenize=False
    )
    if not full_text.startswith(prompt_text):
        raise TrainingError(
            f"{source}: the chat template renders the prompt differently once an answer follows.",
            hint="Use a chat template whose generation prompt prefixes the full conversation.",
        )
    completion_text = _through_end_of_turn(full_text[len(prompt_text) :], record, eot)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    cut = 0
    if len(prompt_ids) + len(completion_ids) > max_seq_len:
        cut = 1
        # Keep the answer whole where possible: the start of a long prompt matters least.
        keep_prompt = max(max_seq_len - len(completion_ids), min(len(prompt_ids), max_seq_len // 2))
        prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt :]
        completion_ids = completion_ids[: max_seq_len - len(prompt_ids)]
    return {
        "input_ids": prompt_ids + completion_ids,
        "labels": [-100] * len(prompt_ids) + completion_ids,
        "_truncated": [cut],
    }


def _through_end_of_turn(completion_text: str, record: dict[str, Any], eot: str) -> str:
    """Cut the rendered completion right after the answer's end-of-turn token."""
    answer = record["completion"][0]["content"]
    end = completion_text.rfind(answer.strip()) if answer.strip() else 0
    after = end + len(answer.strip()) if end >= 0 else 0
    idx = completion_text.find(eot, after)
    if idx < 0:
        # The template writes no end-of-turn token: append one so the model learns to stop.
        return completion_text.rstrip() + eot
    return completion_text[: idx + len(eot)]


def _special_prefix(tokenizer: Any, suffix: str) -> str | None:
    specials = sorted(
        set(tokenizer.all_special_tokens) | set(tokenizer.get_added_vocab()), key=len, reverse=True
    )
    first: tuple[int, str] | None = None
    for tok in specials:
        pos = suffix.find(tok)
        if tok and pos >= 0 and (first is None or pos < first[0]):
            first = (pos, tok)
    return first[1] if first else None


# --- the data stage's API (`ollama_tune.data`) -----------------------------------------


def _read_examples(paths: list[Path]) -> list[Example]:
    from ollama_tune.data import read_examples

    return list(read_examples(paths))


def _split_examples(
    examples: list[Example], test_ratio: float, seed: int
) -> tuple[list[Example], list[Example]]:
    from ollama_tune.data import split_examples

    split = split_examples(examples, test_ratio=test_ratio, seed=seed)
    return list(split.train), list(split.test)


def _write_jsonl(examples: list[Example], path: Path) -> None:
    from ollama_tune.data import auto_style, write_jsonl

    # Seed JSONL when every row fits it (what users wrote), else messages; facts are kept.
    write_jsonl(examples, path, style=auto_style(examples))
