"""Training data: read and split the user's rows, then tokenize them for the loss we want.

Rows become prompt/completion text through the Ollama TEMPLATE the bundle will ship
(`templates.training`: Go's `text/template`, one process for all rows), so what Ollama serves
is what training showed the model. We tokenize ourselves rather than letting TRL do it: the loss
covers exactly the completion (answer and end-of-turn token), which is what teaches a model to
stop, and never whatever the template prints after it (ChatML's trailing newline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune._util import sha256_text
from ollama_tune.data.model import Example, Message
from ollama_tune.errors import DataError


@dataclass
class SplitData:
    train: list[Example]
    test: list[Example]
    train_path: Path
    test_path: Path
    sha256: str
    # How validation was made: "given" (--test-data), "rewordings" (rewordings of trained
    # answers; `data.validation_split`) or "rows" (whole rows held out of training).
    kind: str = "rows"


@dataclass
class EncodedRows:
    rows: list[dict[str, list[int]]]
    tokens: int
    truncated: int
    notes: list[str] = field(default_factory=list)
    template: Any = None  # the OllamaTemplate the text was rendered through (for run.json)
    renderer: str = ""  # "go", "layout" or "jinja"


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
    kind = "given" if test_data is not None else "rows"
    if resume and train_path.is_file() and test_path.is_file():
        # The same rows in the same order as before the interruption, even if the source changed.
        train, test = _read_examples([train_path]), _read_examples([test_path])
        if test_data is None and test and all(e.extra.get("augmented_from") for e in test):
            kind = "rewordings"
    else:
        train = _read_examples(data)
        if test_data is not None:
            test = _read_examples([test_data])
        else:
            train, test, kind = _split_examples(train, test_ratio, seed)
        if write:
            _write_jsonl(train, train_path)
            _write_jsonl(test, test_path)
    if not train:
        raise DataError(f"No training rows in {', '.join(map(str, data))}.", hint="Add rows.")
    digest = sha256_text(
        json.dumps([[ex.to_messages_dicts() for ex in part] for part in (train, test)])
    )
    return SplitData(train, test, train_path, test_path, digest, kind)


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


def spread_questions(examples: list[Example], n: int) -> list[Example]:
    """`n` validation rows spread over different answers: one per answer first (the original
    before its rewordings), then seconds, so an augmented family does not fill the budget."""
    families: dict[tuple[str | None, str], list[Example]] = {}
    for ex in sorted(examples, key=lambda e: bool(e.extra.get("augmented_from"))):
        families.setdefault((ex.system, ex.answer), []).append(ex)
    out: list[Example] = []
    depth = 0
    while len(out) < min(n, len(examples)):
        out += [f[depth] for f in families.values() if depth < len(f)][: n - len(out)]
        depth += 1
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


def training_template(tokenizer: Any, template: Any = None) -> Any:
    """The Ollama TEMPLATE training renders through: `template` (an Ollama model's own or a
    `--template` file's `OllamaTemplate`), else the tokenizer's chat template converted."""
    if template is not None:
        return template
    from ollama_tune.templates import convert_chat_template

    return convert_chat_template(
        getattr(tokenizer, "chat_template", None),
        bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token,
    )


def encode_rows(
    tokenizer: Any, examples: list[Example], max_seq_len: int, template: Any = None
) -> EncodedRows:
    """Tokenize every row into `input_ids` + `labels` (-100 outside the completion).

    The text is the Ollama TEMPLATE's (`templates.training`): prompt = the TEMPLATE rendered for
    the turns before the answer, completion = answer + end-of-turn. Ids come from the model's
    tokenizer with special tokens parsed, plus BOS where llama.cpp adds it.
    """
    from ollama_tune.templates.training import render_training_texts

    tmpl = training_template(tokenizer, template)
    texts = render_training_texts(
        tmpl,
        [ex.prompt_messages for ex in examples],
        [ex.answer for ex in examples],
        chat_template=getattr(tokenizer, "chat_template", None),
        bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token,
    )
    bos_id = _bos_id(tokenizer, tmpl)
    rows, tokens, truncated = [], 0, 0
    for prompt, completion in texts.pairs:
        row, cut = encode_pair(tokenizer, prompt, completion, max_seq_len, bos_id)
        truncated += cut
        rows.append(row)
        tokens += len(row["input_ids"])
    notes = list(texts.warnings)
    if truncated:
        notes.append(f"{truncated} row(s) longer than --max-seq-len {max_seq_len} were cut")
    return EncodedRows(rows, tokens, truncated, notes, template=tmpl, renderer=texts.renderer)


def _bos_id(tokenizer: Any, tmpl: Any) -> int | None:
    # A converted TEMPLATE never prints BOS: llama.cpp adds it where the chat template printed
    # it; for an Ollama model's or a file's TEMPLATE, where the tokenizer adds it.
    chat = getattr(tokenizer, "chat_template", None) or ""
    adds = (
        "bos_token" in chat
        if tmpl.matched == "probed"
        else bool(getattr(tokenizer, "add_bos_token", False))
    )
    return int(tokenizer.bos_token_id) if adds and tokenizer.bos_token_id is not None else None


def encode_pair(
    tokenizer: Any, prompt: str, completion: str, max_seq_len: int, bos_id: int | None = None
) -> tuple[dict[str, list[int]], int]:
    """(row, 1 if it was cut) for one prompt/completion text; special tokens are parsed."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if bos_id is not None:
        prompt_ids = [bos_id, *prompt_ids]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    cut = 0
    if len(prompt_ids) + len(completion_ids) > max_seq_len:
        cut = 1
        # Keep the answer whole where possible: the start of a long prompt matters least.
        keep_prompt = max(max_seq_len - len(completion_ids), min(len(prompt_ids), max_seq_len // 2))
        prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt :]
        completion_ids = completion_ids[: max_seq_len - len(prompt_ids)]
    row = {
        "input_ids": prompt_ids + completion_ids,
        "labels": [-100] * len(prompt_ids) + completion_ids,
    }
    return row, cut


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
) -> tuple[list[Example], list[Example], str]:
    from ollama_tune.data import validation_split

    split = validation_split(examples, ratio=test_ratio, seed=seed)
    return list(split.train), list(split.test), split.kind


def _write_jsonl(examples: list[Example], path: Path) -> None:
    from ollama_tune.data import auto_style, write_jsonl

    # Seed JSONL when every row fits it (what users wrote), else messages; facts are kept.
    write_jsonl(examples, path, style=auto_style(examples))
