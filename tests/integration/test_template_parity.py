"""Byte-identical parity between every family's Jinja chat template and its Ollama TEMPLATE.

Runs the real Go `text/template` (a missing `go` fails the tests) and the real SmolLM2 tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ollama_tune.templates import (
    BATTERY,
    check_parity,
    convert_chat_template,
    render_go,
    render_jinja,
    render_training_pair,
)
from ollama_tune.templates._reference import REFERENCE_TEMPLATES, ReferenceTemplate

pytestmark = pytest.mark.integration

# The special tokens each family's tokenizer defines (bos is dropped: llama.cpp adds it).
TOKENS = {
    "chatml": (None, "<|im_end|>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistral": ("<s>", "</s>"),
    "gemma": ("<bos>", "<eos>"),
    "phi3": ("<s>", "<|endoftext|>"),
    "zephyr": ("<s>", "</s>"),
}
# Templates that reject system messages skip the system conversations (and say why).
NO_SYSTEM_ROLE = {"mistral-v0.1", "mixtral", "gemma2"}


@pytest.mark.parametrize("ref", REFERENCE_TEMPLATES, ids=lambda r: r.variant)
def test_reference_template_parity(ref: ReferenceTemplate) -> None:
    bos, eos = TOKENS[ref.family]
    tmpl = convert_chat_template(ref.jinja, bos_token=bos, eos_token=eos)
    result = check_parity(ref.jinja, tmpl, bos_token=bos, eos_token=eos)
    assert result.ok, result.summary()
    skipped = [c for c in result.cases if c.skipped]
    if ref.variant in NO_SYSTEM_ROLE:
        assert skipped and all("rejected" in (c.skipped or "") for c in skipped)
        assert len(result.compared) >= 6
    else:
        assert not skipped and len(result.compared) == len(BATTERY)
    # The BOS the Jinja template prints is exactly what was dropped; Go never prints it.
    assert result.bos_stripped == (bos is not None and "bos_token" in ref.jinja)
    assert all(not c.actual.startswith(bos or "\0") for c in result.compared)


@pytest.mark.parametrize("ref", REFERENCE_TEMPLATES, ids=lambda r: r.variant)
def test_marker_detected_variants_keep_parity(ref: ReferenceTemplate) -> None:
    # An edited copy is no longer an exact match; the probed conversion must still be exact.
    edited = ref.jinja + "{# edited #}"
    bos, eos = TOKENS[ref.family]
    tmpl = convert_chat_template(edited, bos_token=bos, eos_token=eos)
    assert tmpl.matched == "probed"
    result = check_parity(edited, tmpl, bos_token=bos, eos_token=eos)
    assert result.ok, result.summary()


# Real templates that are not in the reference list, recognised only by their markers.
EXTRA = {
    # ollama template/index.json: ChatML that opens with the BOS token.
    "chatml-bos": (
        "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' "
        "+ message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "<s>",
        "<|im_end|>",
    ),
    # Mistral "v1" instruct (Mamba-Codestral): system folded into the last user turn.
    "mistral-v1": (
        '{%- if messages[0]["role"] == "system" %}\n {%- set system_message = messages[0]'
        '["content"] %}\n {%- set loop_messages = messages[1:] %}\n{%- else %}\n {%- set '
        "loop_messages = messages %}\n{%- endif %}\n{{- bos_token }}\n{%- for message in "
        'loop_messages %}\n {%- if message["role"] == "user" %}\n {%- if loop.last and '
        'system_message is defined %}\n {{- "[INST] " + system_message + "\\n\\n" + message'
        '["content"] + "[/INST]" }}\n {%- else %}\n {{- "[INST] " + message["content"] + '
        '"[/INST]" }}\n {%- endif %}\n {%- elif message["role"] == "assistant" %}\n {{- " " + '
        'message["content"] + eos_token }}\n {%- else %}\n {{- raise_exception("Only user and '
        'assistant roles are supported, with optional system message!") }}\n {%- endif %}\n'
        "{%- endfor %}",
        "<s>",
        "</s>",
    ),
}


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_other_real_templates_convert_by_markers(name: str) -> None:
    jinja, bos, eos = EXTRA[name]
    tmpl = convert_chat_template(jinja, bos_token=bos, eos_token=eos)
    result = check_parity(jinja, tmpl, bos_token=bos, eos_token=eos)
    assert result.ok, result.summary()


def test_real_smollm2_tokenizer_converts_and_matches(smol_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smol_tokenizer_dir))
    tmpl = convert_chat_template(
        tok.chat_template, bos_token=tok.bos_token, eos_token=tok.eos_token
    )
    assert (tmpl.family, tmpl.matched) == ("chatml", "probed")
    assert (
        tmpl.default_system
        == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    )
    assert "<|im_end|>" in tmpl.stop
    result = check_parity(tok.chat_template, tmpl, bos_token=tok.bos_token, eos_token=tok.eos_token)
    assert result.ok, result.summary()
    # The Jinja side really is transformers' own rendering of the tokenizer's template.
    for _, conv in BATTERY[:5]:
        gen = conv[-1]["role"] != "assistant"
        theirs = tok.apply_chat_template(list(conv), tokenize=False, add_generation_prompt=gen)
        ours = render_jinja(
            tok.chat_template,
            conv,
            add_generation_prompt=gen,
            bos_token=tok.bos_token,
            eos_token=tok.eos_token,
        )
        assert ours == theirs


def test_training_prompt_is_what_ollama_feeds_for_a_customer_support_question(
    smol_tokenizer_dir: Path,
) -> None:
    """The prompt training sees for a row equals Ollama's rendering of the same chat request."""
    tok_config = json.loads((smol_tokenizer_dir / "tokenizer_config.json").read_text("utf-8"))
    chat_template = tok_config.get("chat_template") or (
        smol_tokenizer_dir / "chat_template.jinja"
    ).read_text("utf-8")
    tmpl = convert_chat_template(chat_template, eos_token="<|im_end|>")
    question = [
        {"role": "user", "content": "注文をキャンセルしたいのですが、どうすればいいですか？"}
    ]
    prompt, completion = render_training_pair(
        chat_template, question, "マイページの「注文履歴」からキャンセルできます。"
    )
    assert render_go(tmpl.template, question, system=tmpl.default_system) == prompt
    assert completion.endswith("<|im_end|>\n")


def test_cli_checks_the_template_inside_the_real_smollm2_gguf(smollm2_gguf: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from ollama_tune.cli import template_cmd
    from ollama_tune.templates.source import load_chat_template

    src = load_chat_template(smollm2_gguf)
    assert (src.bos_token, src.eos_token) == ("<|im_start|>", "<|im_end|>")
    app = typer.Typer()
    template_cmd.register(app)
    res = CliRunner().invoke(app, ["template", "check", str(smollm2_gguf)])
    assert res.exit_code == 0, res.output
    assert f"{len(BATTERY)}/{len(BATTERY)} conversations identical" in res.output


@pytest.mark.parametrize("name", ["qwen3.jinja", "lfm2.jinja", "nemotron_3_nano.jinja"])
def test_chatml_lookalikes_with_reasoning_blocks_convert_exactly(name: str) -> None:
    """Marker detection called these ChatML and failed parity; probing reads their real layout."""
    from importlib.resources import files

    from ollama_tune.templates import build_ollama_template

    jinja = (files("trl") / "chat_templates" / name).read_text(encoding="utf-8")
    built = build_ollama_template(jinja, eos_token="<|im_end|>", require_parity=True)
    assert built.parity is not None and built.parity.ok, built.parity.summary()
    assert built.template.end_of_turn == "<|im_end|>"
    if name == "qwen3.jinja":  # answers are trained after the empty reasoning block Qwen3 prints
        assert built.template.answer_prefix == "<think>\n\n</think>\n\n"
