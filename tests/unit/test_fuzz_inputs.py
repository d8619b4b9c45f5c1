"""Fuzzing (hypothesis, bounded): random JSON rows, CSV text and recipes never raise anything
but the project's own errors, and loading/converting accounts for every row read."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ollama_tune.config import check_recipe, load_recipe
from ollama_tune.data import CheckConfig, ConvertConfig, convert_data, validate_dataset
from ollama_tune.errors import OllamaTuneError

# Bounded for CI: each test runs this many generated inputs (see the report for the counts).
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_KEYS = st.sampled_from(
    ["instruction", "input", "output", "question", "answer", "system", "facts", "history",
     "messages", "conversations", "prompt", "completion", "text", "role", "content", "from",
     "value", "回答", "質問", "x"]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["user", "assistant", "system", "human", "gpt", "function_call", "\u3000"]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=20,
)


def _json_text(value: Any) -> str:
    # allow_nan: NaN/Infinity are what spreadsheets and scripts really write into JSON.
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


def _accounted(path: Path, out: Path) -> None:
    try:
        check = validate_dataset(CheckConfig([path]))
        result = convert_data(ConvertConfig([path], out, to="messages"))
    except OllamaTuneError:
        return  # the project's own error: a message, never a traceback
    assert check.load.rows_read == result.read == result.written + result.rejected
    written = out.read_text(encoding="utf-8").splitlines()
    assert len(written) == result.written and all(json.loads(line) for line in written)


@FUZZ
@given(rows=st.lists(_JSON, max_size=6), dup=st.booleans(), array=st.booleans())
def test_random_json_rows_are_loaded_or_rejected_never_crash(
    rows: list[Any], dup: bool, array: bool
) -> None:
    lines = [_json_text(r) for r in rows]
    if dup and lines and lines[0].startswith("{") and lines[0] != "{}":
        lines[0] = lines[0][:-1] + ', "output": 1}'  # a duplicate (or extra) key
    text = ("[" + ",\n".join(lines) + "]") if array else "\n".join(lines)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("in.json" if array else "in.jsonl")
        path.write_text(text, encoding="utf-8")
        _accounted(path, Path(d) / "out.jsonl")


_CELL = st.text(alphabet='ab質問 \u3000,"\n\r\t', max_size=10)


@FUZZ
@given(
    header=st.lists(st.sampled_from(["question", "answer", "input", "質問", "回答", "x", ""]),
                    min_size=1, max_size=4),
    cells=st.lists(st.lists(_CELL, max_size=5), max_size=6),
    quote=st.booleans(),
    tsv=st.booleans(),
)  # fmt: skip
def test_random_csv_is_loaded_or_rejected_never_crash(
    header: list[str], cells: list[list[str]], quote: bool, tsv: bool
) -> None:
    sep = "\t" if tsv else ","

    def cell(c: str) -> str:
        return '"' + c.replace('"', '""') + '"' if quote else c

    text = sep.join(header) + "\n" + "\n".join(sep.join(map(cell, row)) for row in cells)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("in.tsv" if tsv else "in.csv")
        path.write_text(text, encoding="utf-8")
        _accounted(path, Path(d) / "out.jsonl")


_YAML_KEYS = st.sampled_from(
    ["name", "data", "train", "test", "format", "base_model", "customize", "shots", "epochs",
     "lora_r", "ollama", "host", "eval", "gates", "export", "quants", "workdir", "system", "??"]
)  # fmt: skip
_YAML_VALUES = st.recursive(
    st.one_of(_SCALARS, st.sampled_from(["data/train.jsonl", ".inf", "q8_0", "[::1", "excel"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_YAML_KEYS, inner, max_size=4),
    max_leaves=15,
)


def _recipe_never_crashes(path: Path) -> None:
    issues = check_recipe(path)
    assert all(i.line >= 1 and i.message for i in issues)
    with contextlib.suppress(OllamaTuneError):  # the project's own error is the contract
        load_recipe(path)


@FUZZ
@given(recipe=st.dictionaries(_YAML_KEYS, _YAML_VALUES, max_size=6))
def test_random_recipes_give_issues_never_crash(recipe: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
        _recipe_never_crashes(path)


@FUZZ
@given(
    text=st.text(alphabet="abdt: -\n\t[]{}&*!|>'\"#%@`,?.\u3000質", max_size=120),
    encoding=st.sampled_from(["utf-8", "utf-16", "shift_jis"]),
)
def test_random_recipe_text_gives_issues_never_crash(text: str, encoding: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "recipe.yaml"
        path.write_bytes(text.encode(encoding, errors="replace"))
        _recipe_never_crashes(path)


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_recipe_bytes_give_issues_never_crash(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "recipe.yaml"
        path.write_bytes(data)
        _recipe_never_crashes(path)


@FUZZ
@given(text=st.text(max_size=40))
def test_canonical_equals_the_normalise_then_strip_definition(text: str) -> None:
    import re

    from ollama_tune.data.dedup import canonical
    from ollama_tune.japanese import normalize_text

    assert canonical(text) == re.sub(r"[\W_]+", "", normalize_text(text))


def _detect_language_by_char(text: str) -> str:
    """The per-character definition `detect_language` had before it counted with findall."""
    from ollama_tune.japanese import _HANGUL, _JA, _KANA, _LATIN, _letters

    letters = _letters(text)
    if len(letters) < 2:
        return "unknown"
    n = len(letters)
    kana = sum(1 for c in letters if _KANA.match(c))
    ja = sum(1 for c in letters if _JA.match(c))
    hangul = sum(1 for c in letters if _HANGUL.match(c))
    latin = sum(1 for c in letters if _LATIN.match(c))
    if ja / n >= 0.3:
        return "ja" if kana > 0 or ja / n < 0.5 or kana / max(ja, 1) > 0.05 else "zh"
    if hangul / n >= 0.3:
        return "ko"
    return "en" if latin / n >= 0.6 else "other"


@FUZZ
@given(text=st.text(alphabet="aZé한글ひらカナ漢字々ー1 。`x", max_size=30) | st.text(max_size=30))
def test_detect_language_counts_like_the_per_character_definition(text: str) -> None:
    from ollama_tune.japanese import detect_language

    assert detect_language(text) == _detect_language_by_char(text)
