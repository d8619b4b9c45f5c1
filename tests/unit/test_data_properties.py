"""Property tests: the loader never crashes on arbitrary bytes; convert never loses a row;
the fast near-duplicate search finds exactly the pairs a brute-force comparison finds."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ollama_tune.data import (
    CheckConfig,
    ConvertConfig,
    convert_data,
    load_examples,
    validate_dataset,
)
from ollama_tune.data.dedup import NEAR_DUP_THRESHOLD, canonical, grams, jaccard, similar_pairs

SUFFIXES = st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".txt"])
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


_BYTES = st.one_of(
    st.binary(max_size=300),
    st.text(alphabet='{}[]",:\n\r\tab質問回答\x85 ', max_size=80).map(str.encode),
)


@FAST
@given(data=_BYTES, suffix=SUFFIXES, encoding=st.sampled_from([None, None, "utf-16", "cp932"]))
def test_loader_never_crashes_on_arbitrary_bytes(
    data: bytes, suffix: str, encoding: str | None
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"in{suffix}"
        path.write_bytes(data)
        result = load_examples(path, encoding=encoding)
        assert result.rows_read == len(result.examples) + len(result.rejected)
        if result.rejected:
            assert result.errors
        # Everything reported or written must be valid UTF-8 (no stray surrogates).
        check = validate_dataset(CheckConfig([path], encoding=encoding))
        json.dumps(check.to_dict(), ensure_ascii=False).encode("utf-8")
        out = Path(d) / "out.jsonl"
        converted = convert_data(ConvertConfig([path], out, encoding=encoding))
        assert converted.written + converted.rejected == result.rows_read


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_value = st.one_of(_text, st.integers(), st.none(), st.lists(_text, max_size=2), st.booleans())
_row = st.one_of(
    st.fixed_dictionaries(
        {"instruction": _value, "output": _value},
        optional={"input": _value, "system": _value, "x": _value},
    ),
    st.fixed_dictionaries(
        {
            "messages": st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "assistant", "system", "bot"]),
                        "content": _value,
                    }
                ),
                max_size=4,
            )
        }
    ),
    _value,
)
_line = st.one_of(_row.map(lambda r: json.dumps(r, ensure_ascii=False)), _text)


@FAST
@given(lines=st.lists(_line, max_size=12), to=st.sampled_from(["seed", "messages"]))
def test_convert_loses_no_row(lines: list[str], to: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in.jsonl"
        src.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = convert_data(ConvertConfig([src], Path(d) / "out.jsonl", to=to))
        records = [s for s in "\n".join(lines).replace("\r", "\n").split("\n") if s.strip()]
        # A pretty-printed object spanning lines is one record.
        assert (result.read >= 1) == bool(records) and result.read <= len(records)
        assert result.written + result.rejected == result.read
        written = (Path(d) / "out.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(written) == result.written
        rejected_file = Path(d) / "out.rejected.jsonl"
        rejected = rejected_file.read_text(encoding="utf-8").splitlines() if result.rejected else []
        assert len(rejected) == result.rejected


_BASES = ["返品は到着後30日以内に承ります", "送料は全国一律550円です", "Points: 1 per 100 yen"]


@st.composite
def _variants(draw: st.DrawFn) -> str:
    chars = list(draw(st.sampled_from(_BASES)))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(chars)))
        chars.insert(pos, draw(st.sampled_from("あいうabc12 、")))
    return "".join(chars)


@FAST
@given(texts=st.lists(_variants(), min_size=2, max_size=25))
def test_near_duplicate_search_equals_brute_force(texts: list[str]) -> None:
    sets = [grams(canonical(t)) for t in texts]
    brute = {
        (i, j)
        for j in range(len(texts))
        for i in range(j)
        if jaccard(sets[i], sets[j]) >= NEAR_DUP_THRESHOLD
    }
    assert {(i, j) for i, j, _ in similar_pairs(texts)} == brute
