"""Every real chat template of the corpus: converted exactly (real Go) or refused in one line.

The corpus (`tests/data/templates/`, sources in `sources.json`) holds real templates of public
models. A converted TEMPLATE must render, through Go's `text/template` fed as Ollama feeds it,
byte for byte what the chat template renders on the whole battery (with and without system,
multi-turn, Japanese, quotes, newlines, `{{ .System }}` inside content, training text), also
with a Modelfile SYSTEM. The rest must be refused with one line and the escape hatch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ollama_tune.errors import TemplateError
from ollama_tune.templates import check_parity, convert_chat_template, render_go_many
from ollama_tune.templates.training import render_training_texts

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parent.parent / "data" / "templates"
SOURCES = json.loads((CORPUS / "sources.json").read_text(encoding="utf-8"))
# Refused on purpose, with the reason the converter gives (see the coverage bench).
REFUSED = {
    "trl-idefics3.jinja",  # content must be a list of parts (vision model)
    "trl-llava_next.jinja",  # same
    "chujiezheng-falcon-instruct.jinja",  # rewrites "\n\n" inside message content
}


def test_corpus_is_large_and_sourced() -> None:
    assert len(SOURCES) >= 60
    for src in SOURCES:
        assert (CORPUS / src["file"]).is_file() and src["repo"], src


@pytest.mark.parametrize("src", SOURCES, ids=lambda s: s["file"])
def test_corpus_template_converts_exactly_or_is_refused_in_one_line(src: dict[str, str]) -> None:
    text = (CORPUS / src["file"]).read_text(encoding="utf-8")
    bos, eos = src["bos_token"], src["eos_token"]
    try:
        tmpl = convert_chat_template(text, bos_token=bos, eos_token=eos)
    except TemplateError as exc:
        assert src["file"] in REFUSED, exc.message
        assert "\n" not in exc.message and exc.hint and "--template FILE" in exc.hint
        return
    assert src["file"] not in REFUSED, "now converts: drop it from REFUSED"
    for system in (None, 'あなたは "サンプル" 社の担当です。\n{{ .System }}'):
        if system and not tmpl.system_supported:
            continue  # nothing native to compare: the chat template has no system prompt
        result = check_parity(text, tmpl, bos_token=bos, eos_token=eos, system=system)
        assert result.ok, result.summary()
    assert tmpl.end_of_turn and tmpl.stop and tmpl.end_of_turn.strip() in "".join(tmpl.stop)


def test_training_text_is_the_go_rendering_for_the_whole_corpus() -> None:
    """One source of truth: each converted template's training prompt is Go's own output."""
    conv = [{"role": "user", "content": "返品できますか？"}]
    checked = 0
    for src in SOURCES:
        text = (CORPUS / src["file"]).read_text(encoding="utf-8")
        try:
            tmpl = convert_chat_template(
                text, bos_token=src["bos_token"], eos_token=src["eos_token"]
            )
        except TemplateError:
            continue
        texts = render_training_texts(tmpl, [conv], ["はい。"])
        (go,) = render_go_many(tmpl.template, [conv])
        assert texts.renderer == "go" and texts.pairs[0][0] == go.output
        assert texts.pairs[0][1] == tmpl.answer_prefix + "はい。" + tmpl.end_of_turn
        checked += 1
    assert checked >= 0.9 * len(SOURCES)
