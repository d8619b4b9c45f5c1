"""Modelfile parse/render/create-args: Ollama's parser rules, line-numbered errors, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ollama_tune.errors import ModelfileError
from ollama_tune.modelfile import Modelfile, value_problem

GUIDE_STYLE = """\ufeff# サポートボット
from llama3.2:1b
Parameter temperature 0.7
PARAMETER top_p 0.9
PARAMETER stop <|im_end|>
PARAMETER stop "</s>"
SYSTEM \"\"\"あなたは丁寧なサポート担当です。
FROM ここはキーワードではなく本文です
# これもコメントではなく本文です
\"\"\"
MESSAGE user 返品はできますか？
MESSAGE assistant "はい、14日以内なら可能です。"
TEMPLATE {{ .Prompt }}
LICENSE MIT
"""


def test_parse_follows_ollama_rules_keywords_comments_and_quotes() -> None:
    mf = Modelfile.parse(GUIDE_STYLE)
    assert mf.from_ == "llama3.2:1b"
    assert mf.parameters == [
        ("temperature", "0.7"),
        ("top_p", "0.9"),
        ("stop", "<|im_end|>"),
        ("stop", "</s>"),
    ]
    assert mf.system == (
        "あなたは丁寧なサポート担当です。\nFROM ここはキーワードではなく本文です\n"
        "# これもコメントではなく本文です\n"
    )
    assert mf.messages == [
        ("user", "返品はできますか？"),
        ("assistant", "はい、14日以内なら可能です。"),
    ]
    assert mf.template == "{{ .Prompt }}"
    assert mf.license == ["MIT"]


def test_inline_hash_is_part_of_the_value_like_in_ollama() -> None:
    mf = Modelfile.parse("FROM x\nPARAMETER temperature 0.7   # 生成パラメータ\n")
    assert mf.parameters == [("temperature", "0.7   # 生成パラメータ")]


def test_crlf_file_reads_like_lf_and_keeps_crlf_inside_quotes() -> None:
    head = GUIDE_STYLE.split("SYSTEM")[0]  # single-line values only
    assert Modelfile.parse(head.replace("\n", "\r\n")) == Modelfile.parse(head)
    mf = Modelfile.parse('FROM x\r\nSYSTEM """a\r\nb"""\r\n')
    assert mf.system == "a\r\nb"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("FROM x\nPARAMETR temperature 1\n", 2, "unknown command 'PARAMETR'"),
        ("FROM x\n\nMESSAGE bot hi\n", 3, "MESSAGE role 'bot'"),
        ('FROM x\nSYSTEM """never\nclosed\n', 2, "never closed"),
        ("FROM x\nPARAMETER temperature\n", 2, "has no value"),
        ("FROM x\r\nSYSTEM ok\r\nFR0M y\r\n", 3, "unexpected '0'"),
    ],
)
def test_parse_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ModelfileError) as err:
        Modelfile.parse(text, path="Modelfile")
    assert f"Modelfile:{line}:" in err.value.message
    assert words in err.value.message
    assert err.value.hint


def test_render_refuses_triple_quotes_naming_the_row() -> None:
    mf = Modelfile(from_="x", messages=[("user", "q"), ("assistant", 'a\nsee """here"""\n')])
    with pytest.raises(ModelfileError) as err:
        mf.render()
    assert "MESSAGE #2 (assistant)" in err.value.message
    assert '"""' in err.value.message
    # The JSON create API has no such limit: the value goes there untouched.
    assert mf.to_create_args()["messages"][1]["content"] == 'a\nsee """here"""\n'


def test_render_refuses_characters_ollama_would_drop() -> None:
    mf = Modelfile(from_="x", system="全角\u3000スペース")
    with pytest.raises(ModelfileError, match=r"SYSTEM contains U\+3000 IDEOGRAPHIC SPACE"):
        mf.render()
    assert value_problem("ok 日本語") is None


def test_single_line_value_with_triple_quote_inside_is_still_representable() -> None:
    mf = Modelfile(from_="x", system='say """ once')
    assert Modelfile.parse(mf.render()) == mf


def test_to_create_args_types_parameters_and_hashes_local_files(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 10)
    (tmp_path / "Modelfile").write_text(
        "FROM ./model.gguf\nPARAMETER num_ctx 4096\nPARAMETER temperature 0.2\n"
        "PARAMETER use_mmap false\nPARAMETER stop <|im_end|>\nPARAMETER stop </s>\n"
        "PARAMETER mirostat 1\nSYSTEM hi\nLICENSE a\nLICENSE b\n",
        encoding="utf-8",
    )
    args = Modelfile.read(tmp_path / "Modelfile").to_create_args(tmp_path)
    digest = "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert args == {
        "files": {"model.gguf": digest},
        "system": "hi",
        "license": ["a", "b"],
        # mirostat is dropped, as `ollama create` does for deprecated parameters
        "parameters": {
            "num_ctx": 4096,
            "temperature": 0.2,
            "use_mmap": False,
            "stop": ["<|im_end|>", "</s>"],
        },
    }
    assert json.dumps(args)  # plain JSON types only


def test_from_model_name_becomes_from() -> None:
    assert Modelfile(from_="llama3.2:1b").to_create_args() == {"from": "llama3.2:1b"}


# ---- property: parse(render(m)) == m under Ollama's rules -------------------------------------

_SNIPPETS = ["FROM ", "SYSTEM ", "MESSAGE user ", "PARAMETER ", '"""', "\r\n", "\ufeff", "\u3000"]
_ALPHABET = st.sampled_from([*'abcXYZ 01"#\t\n\r:日本語返品「」。ー？！', *_SNIPPETS])
_TEXT = st.lists(_ALPHABET, max_size=12).map("".join)


def _refusal_is_justified(value: str) -> bool:
    dropped = any(not (c.isprintable() or c in "\t\r\n") for c in value)
    return dropped or '"""' in value


@st.composite
def modelfiles(draw: st.DrawFn) -> Modelfile:
    return Modelfile(
        from_=draw(_TEXT),
        system=draw(st.none() | _TEXT),
        template=draw(st.none() | _TEXT),
        parameters=draw(
            st.lists(
                st.tuples(st.sampled_from(["stop", "temperature", "top_p"]), _TEXT), max_size=3
            )
        ),
        messages=draw(
            st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), _TEXT), max_size=4)
        ),
        license=draw(st.lists(_TEXT, max_size=2)),
        adapters=draw(st.lists(_TEXT, max_size=1)),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modelfiles())
def test_property_render_reads_back_identically_or_refuses_with_reason(mf: Modelfile) -> None:
    values = [mf.from_ or "", mf.system or "", mf.template or "", *mf.license, *mf.adapters]
    values += [v for _, v in mf.parameters] + [c for _, c in mf.messages]
    try:
        text = mf.render()
    except ModelfileError:
        assert any(_refusal_is_justified(v) for v in values)
        return
    assert Modelfile.parse(text) == mf
    assert Modelfile.parse("\ufeff" + text) == mf  # a BOM is ignored


@settings(max_examples=500, deadline=None)
@given(_TEXT)
def test_property_each_value_is_written_exactly_or_refused_for_a_reason(value: str) -> None:
    problem = value_problem(value)
    if problem is not None:
        assert _refusal_is_justified(value), problem
        return
    mf = Modelfile(from_="x", system=value, messages=[("user", value)])
    assert Modelfile.parse(mf.render()) == mf
