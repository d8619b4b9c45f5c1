"""The linear-time Modelfile parser against the reference transcription of Ollama's parser.

Property tests (hypothesis, bounded): on random Modelfile-like text the new parser reads the
same commands, or fails on the same line with the same message, as the plain rune-by-rune
transcription (`_modelfile_reference.py`); on any text at all it raises nothing but
`ModelfileError`; and render → parse gives back the same `Modelfile`.
"""

from __future__ import annotations

import contextlib

from _modelfile_reference import _parse_commands as reference_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ollama_tune.errors import ModelfileError
from ollama_tune.modelfile import Modelfile
from ollama_tune.modelfile.parse import parse_commands

_PIECES = [
    *'abcXYZ 01"#\t\n\r:_.日本語「」。',
    "FROM ", "from ", "SYSTEM ", "TEMPLATE ", "MESSAGE user ", "MESSAGE bot ", "PARAMETER ",
    "PARAMETER stop ", "ADAPTER ", "LICENSE ", '"""', '"', "\r\n", "\n\n", "\ufeff", "\u3000",
    "\x00", "\x7f", "  ", "{{ .Prompt }}",
]  # fmt: skip
MODELFILE_LIKE = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)
_SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _reference(text: str) -> tuple[list[tuple[str, str, int, str | None]] | None, str | None]:
    try:
        return [(c.name, c.args, c.line, c.role) for c in reference_parse(text)], None
    except ModelfileError as exc:
        return None, exc.message


@_SETTINGS
@given(MODELFILE_LIKE)
def test_same_commands_or_same_first_error_as_the_reference(text: str) -> None:
    expected, error = _reference(text)
    commands, problems = parse_commands(text)
    if error is None:
        assert problems == []
        assert [(c.name, c.args, c.line, c.role) for c in commands] == expected
        return
    assert problems, error
    first = f"line {problems[0].line}: {problems[0].message}"
    where, _, message = error.partition(": ")
    # A value cut short by a \"\"\" inside it gets a longer message that quotes the original.
    assert first == error or (first.startswith(where + ": ") and f"({message})" in first)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=200))
def test_any_text_raises_nothing_but_modelfile_error(text: str) -> None:
    try:
        mf = Modelfile.parse(text, path="Modelfile")
    except ModelfileError as exc:
        assert exc.message.startswith("Modelfile:") and exc.hint
        return
    assert isinstance(mf, Modelfile)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_read_from_a_file_raise_nothing_but_modelfile_error(
    tmp_path_factory, data
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.getbasetemp() / "fuzzed-Modelfile"
    path.write_bytes(data)
    with contextlib.suppress(ModelfileError):  # anything else fails the test
        Modelfile.read(path)


_VALUE = st.lists(
    st.sampled_from([*'ab 日本"#:\t\n\r{}.', '"""', "\r\n", "FROM x\n"]), max_size=12
).map("".join)


@st.composite
def modelfiles(draw: st.DrawFn) -> Modelfile:
    names = st.sampled_from(["stop", "temperature", "num_ctx", "top_p"])
    return Modelfile(
        from_=draw(_VALUE.filter(bool)),
        system=draw(st.none() | _VALUE),
        template=draw(st.none() | _VALUE),
        parameters=draw(st.lists(st.tuples(names, _VALUE), max_size=3)),
        messages=draw(
            st.lists(
                st.tuples(st.sampled_from(["system", "user", "assistant"]), _VALUE), max_size=4
            )
        ),
        license=draw(st.lists(_VALUE, max_size=2)),
    )


@_SETTINGS
@given(modelfiles())
def test_render_then_parse_is_the_same_modelfile_or_a_justified_refusal(mf: Modelfile) -> None:
    try:
        text = mf.render()
    except ModelfileError as exc:
        assert '"""' in exc.message  # the only thing _VALUE can contain that cannot be written
        return
    assert Modelfile.parse(text) == mf
