"""The fast paths of `data check` (issue 13) find exactly what the plain paths find.

Large sets run the data-set-wide checks in a forked child; every key is normalised once;
scripts are counted without a list per character. Each is compared here with the slow way.
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from _data_helpers import write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from ollama_tune.data import CheckConfig, forked, validate_dataset
from ollama_tune.data import checks as checks_mod
from ollama_tune.data.dedup import canonical
from ollama_tune.data.loader import load_examples
from ollama_tune.data.tokens import estimate_tokens
from ollama_tune.japanese import (
    _JA,
    _KANA,
    _LATIN,
    detect_language,
    mixes_politeness,
    politeness,
    strip_code,
)

_KANJI = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]
_KANA_CHARS = [chr(c) for c in range(0x3041, 0x3094)]


def _word(rnd: random.Random) -> str:
    return "".join(rnd.choice(_KANJI + _KANA_CHARS) for _ in range(rnd.randint(2, 4)))


def _rows(n: int) -> list[dict[str, Any]]:
    """Rows with every kind of problem the set-wide and per-row checks look for."""
    rnd = random.Random(7)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        q = "".join(_word(rnd) for _ in range(5)) + "ですか？"
        a = "".join(_word(rnd) for _ in range(8)) + "です。"
        kind = i % 50
        if kind == 1 and rows:
            rows.append(dict(rows[-1]))  # duplicate
            continue
        if kind == 2 and rows:
            rows.append({**rows[-1], "output": rows[-1]["output"] + "よ"})  # near / conflict
            continue
        if kind == 3:
            a += "お電話は090-1234-5678まで。"  # personal data
        if kind == 4:
            a = "Please contact us by e-mail at user@example.com today."  # language, pii
        if kind == 5:
            a += "返品できる。"  # mixed politeness
        if kind == 6:
            a += "送料は５５０円、5000円以上で無料です。"  # mixed digit widths
        rows.append({"instruction": q, "input": "", "output": a})
    return rows


def _issues(path: Path, monkeypatch: Any, fork: bool) -> list[tuple[str, int, str, str]]:
    if fork:
        monkeypatch.delenv("OLLAMA_TUNE_NO_FORK", raising=False)
    else:
        monkeypatch.setenv("OLLAMA_TUNE_NO_FORK", "1")
    result = validate_dataset(CheckConfig([path]))
    return [(i.source.path, i.source.line, i.code, i.message) for i in result.issues]


def test_forked_check_finds_exactly_what_one_process_finds(
    tmp_path: Path, monkeypatch: Any
) -> None:
    path = write_jsonl(tmp_path / "big.jsonl", _rows(6000))
    monkeypatch.setattr(checks_mod, "FORK_BYTES", path.stat().st_size)
    spawned: list[int] = []
    real_fork = os.fork

    def counting_fork() -> int:
        pid = real_fork()
        if pid:
            spawned.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting_fork)
    # The suite may have imported torch already; the child here runs pure Python only.
    monkeypatch.setattr(forked, "can_fork", lambda: not os.environ.get("OLLAMA_TUNE_NO_FORK"))
    forked_issues = _issues(path, monkeypatch, fork=True)
    assert spawned, "a large set must use the forked child (else this test proves nothing)"
    spawned.clear()
    plain = _issues(path, monkeypatch, fork=False)
    assert not spawned
    assert forked_issues == plain
    codes = {c for _, _, c, _ in plain}
    expected = {"duplicate", "near-duplicate", "personal-data", "language-mismatch"}
    assert expected | {"mixed-politeness", "mixed-digit-width"} <= codes


def test_only_large_regular_files_are_checked_in_two_processes(
    tmp_path: Path, monkeypatch: Any
) -> None:
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * 100)
    monkeypatch.setattr(checks_mod, "FORK_BYTES", 100)
    assert checks_mod._large([big])
    assert not checks_mod._large([tmp_path / "small.jsonl"])  # missing: the loader reports it
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    assert not checks_mod._large([big, fifo])  # two readers would split a FIFO's rows
    monkeypatch.setattr(checks_mod, "FORK_BYTES", 101)
    assert not checks_mod._large([big])


def test_a_failing_child_falls_back_to_the_parent(monkeypatch: Any) -> None:
    calls: list[int] = []

    def job() -> str:
        calls.append(os.getpid())
        if os.getpid() != parent:
            raise RuntimeError("child only")
        return "done in the parent"

    parent = os.getpid()
    monkeypatch.setattr(forked, "can_fork", lambda: True)  # torch may be loaded by now
    assert forked.start(job)() == "done in the parent"
    assert calls == [parent]  # the child's attempt ran in another process


def test_child_result_comes_back(monkeypatch: Any) -> None:
    monkeypatch.setattr(forked, "can_fork", lambda: True)
    parent = os.getpid()
    pid = forked.start(os.getpid)()
    assert pid != parent


def test_no_fork_where_torch_or_threads_run(monkeypatch: Any) -> None:
    monkeypatch.delenv("OLLAMA_TUNE_NO_FORK", raising=False)
    monkeypatch.setitem(sys.modules, "torch", object())
    assert not forked.can_fork()
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.setenv("OLLAMA_TUNE_NO_FORK", "1")
    assert not forked.can_fork()


def test_canonical_keys_equal_canonical_of_the_joined_turns(tmp_path: Path) -> None:
    rows = [
        {"instruction": "ＡＢＣ？", "input": "補足　です", "output": "ΟΔΟΣ です。", "system": "Ｓ"},
        {"instruction": "q", "output": "a", "history": [["前の質問", "前の答え"]]},
    ]
    examples = load_examples([write_jsonl(tmp_path / "k.jsonl", rows)]).examples
    keys = checks_mod.canonical_keys(examples)
    for i, ex in enumerate(examples):
        non_system = "\n".join(m.content for m in ex.messages if m.role != "system")
        assert keys.row[i] == canonical(non_system)
        assert keys.prompt[i] == canonical("\n".join(m.content for m in ex.prompt_messages))
        assert keys.answer[i] == canonical(ex.answer)


_WIDE = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60
) | st.text(alphabet="あア漢字한글abcＡ１1 。、！?", max_size=60)


def _old_language(text: str) -> str:
    letters = "".join(c for c in strip_code(text) if c.isalpha())
    if len(letters) < 2:
        return "unknown"
    n = len(letters)
    kana, ja = len(_KANA.findall(letters)), len(_JA.findall(letters))
    hangul = len(re.findall(r"[\uac00-\ud7af\u1100-\u11ff]", letters))
    latin = len(_LATIN.findall(letters))
    if ja / n >= 0.3:
        return "ja" if kana > 0 or ja / n < 0.5 or kana / max(ja, 1) > 0.05 else "zh"
    if hangul / n >= 0.3:
        return "ko"
    return "en" if latin / n >= 0.6 else "other"


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_script_counts_by_deleting_the_rest_equal_findall(text: str) -> None:
    assert detect_language(text) == _old_language(text)
    wide = len(_WIDE.findall(text))
    assert estimate_tokens(text) == math.ceil(wide * 1.7 + (len(text) - wide) / 4)


def test_many_issues_are_summarised_not_drawn_as_one_huge_table(tmp_path: Path) -> None:
    rows = _rows(2000)
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    out = subprocess.run(
        [sys.executable, "-m", "ollama_tune", "data", "check", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "160"},
        check=False,
    )
    total = len(validate_dataset(CheckConfig([path])).issues)
    assert total > 200 and out.returncode == 0, out.stderr
    assert f"{total} issues by kind" in out.stdout
    assert "near-duplicate" in out.stdout and "--json" in out.stdout
    assert f"and {total - 50} more" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


_SENTENCES = st.lists(
    st.sampled_from(
        [
            "返品できます。",
            "返品できる。",
            "送料は無料です",
            "発送する",
            "Thanks.",
            "1. 申請",
            "はい！",
            "",
        ]
    ),
    max_size=6,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_SENTENCES | _TEXT)
def test_mixes_politeness_equals_the_full_count(text: str) -> None:
    assert mixes_politeness(text) == politeness(text).mixed
