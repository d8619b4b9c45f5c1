"""Chat template conversion and Jinja rendering (no Go needed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_tune.errors import TemplateError
from ollama_tune.templates import (
    ChatTemplateRejected,
    collate_messages,
    convert_chat_template,
    first_difference,
    load_template_file,
    render_jinja,
    render_training_pair,
)
from ollama_tune.templates._reference import REFERENCE_TEMPLATES

REF = {r.variant: r.jinja for r in REFERENCE_TEMPLATES}

EXPECTED_FAMILY = {
    "chatml": "chatml",
    "smollm2": "chatml",
    "qwen2": "chatml",
    "qwen2.5": "chatml",
    "llama3": "llama3",
    "llama3.1": "llama3",
    "llama3.2": "llama3",
    "mistral-v0.1": "mistral",
    "mixtral": "mistral",
    "mistral-v0.3": "mistral",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "phi3": "phi3",
    "phi3.5": "phi3",
    "zephyr": "zephyr",
}


@pytest.mark.parametrize("variant", sorted(EXPECTED_FAMILY))
def test_every_reference_template_converts_and_is_labelled(variant: str) -> None:
    tmpl = convert_chat_template(REF[variant])
    assert (tmpl.family, tmpl.matched) == (EXPECTED_FAMILY[variant], "probed")
    assert "{{- .Content }}" in tmpl.template and tmpl.layout is not None


@pytest.mark.parametrize("variant", sorted(EXPECTED_FAMILY))
def test_edited_templates_convert_to_the_same_template(variant: str) -> None:
    # Conversion reads how the template renders, not its text: a comment changes nothing.
    edited = convert_chat_template(REF[variant] + "{# local edit #}")
    assert edited.template == convert_chat_template(REF[variant]).template


@pytest.mark.parametrize(
    ("variant", "default_system"),
    [
        ("smollm2", "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
        ("qwen2", "You are a helpful assistant."),
        ("qwen2.5", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
        ("chatml", None),
        ("llama3.1", None),
        ("gemma3", None),
    ],
)
def test_default_system_prompt_goes_to_system(variant: str, default_system: str | None) -> None:
    assert convert_chat_template(REF[variant]).default_system == default_system


@pytest.mark.parametrize(
    ("variant", "eos", "end_of_turn", "stop"),
    [
        ("smollm2", "<|im_end|>", "<|im_end|>", ["<|im_end|>"]),
        ("llama3.1", "<|eot_id|>", "<|eot_id|>", ["<|eot_id|>"]),
        ("mistral-v0.3", "</s>", "</s>", ["</s>"]),
        ("gemma3", "<eos>", "<end_of_turn>", ["<end_of_turn>", "<eos>"]),
        ("phi3", "<|endoftext|>", "<|end|>", ["<|end|>", "<|endoftext|>"]),
        ("zephyr", "</s>", "</s>", ["</s>"]),
    ],
)
def test_stops_are_the_trained_end_of_turn_and_eos(
    variant: str, eos: str, end_of_turn: str, stop: list[str]
) -> None:
    out = convert_chat_template(REF[variant], eos_token=eos)
    assert (out.end_of_turn, out.stop) == (end_of_turn, stop)


def test_llama31_preamble_and_eos_are_baked_into_the_go_template() -> None:
    llama = convert_chat_template(REF["llama3.1"], bos_token="<|begin_of_text|>")
    assert "Cutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\n" in llama.template
    assert "<|begin_of_text|>" not in llama.template  # llama.cpp adds BOS itself
    zephyr = convert_chat_template(REF["zephyr"], eos_token="<EOT>")
    assert '{{ "<EOT>\\n<|user|>\\n" }}' in zephyr.template and zephyr.end_of_turn == "<EOT>"


def test_llama32_prints_today_and_says_the_date_is_fixed() -> None:
    from datetime import datetime

    llama = convert_chat_template(REF["llama3.2"], bos_token="<|begin_of_text|>")
    assert f"Today Date: {datetime.now().strftime('%d %b %Y')}" in llama.template
    assert any("date of this conversion is fixed" in n for n in llama.notes)


@pytest.mark.parametrize(
    ("template", "construct"),
    [
        (
            "{% for m in messages %}Turn {{ loop.index }} {{ m['role'] }}: {{ m['content'] }}\n"
            "{% endfor %}",
            "change from turn to turn",
        ),
        ("{% for m in messages %}{{ m['content'] }}|{{ m['content'] }}{% endfor %}", "once"),
        (
            "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | upper }}{% endfor %}",
            "on the conversation",
        ),
    ],
)
def test_inexpressible_templates_are_refused_in_one_line(template: str, construct: str) -> None:
    with pytest.raises(TemplateError) as err:
        convert_chat_template(template)
    assert construct in err.value.message and "\n" not in err.value.message
    assert err.value.hint and "--template FILE" in err.value.hint
    assert "ollama:NAME" in err.value.hint


def test_llama2_per_turn_bos_is_kept_and_the_first_dropped() -> None:
    from ollama_tune.templates import render_jinja

    llama2 = (
        "{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + "
        "m['content'] + ' [/INST]' }}{% elif m['role'] == 'assistant' %}{{ ' ' + m['content'] "
        "+ ' ' + eos_token }}{% endif %}{% endfor %}"
    )
    tmpl = convert_chat_template(llama2, bos_token="<s>", eos_token="</s>")
    conv = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    conv.append({"role": "user", "content": "c"})
    jinja = render_jinja(
        llama2, conv, add_generation_prompt=True, bos_token="<s>", eos_token="</s>"
    )
    assert tmpl.layout is not None and "<s>" + tmpl.layout.render(conv) == jinja
    assert tmpl.answer_prefix == " " and tmpl.end_of_turn == " </s>"


def test_tool_template_that_fails_without_tools_is_served_on_its_tool_free_path() -> None:
    # Phi-4-mini's llama.cpp template iterates `tools` whenever it is defined, None included.
    phi4 = (
        "{%- if messages[0]['role'] == 'system' %}{%- set sm = messages[0]['content'] %}"
        "{% elif tools is defined -%}{%- set sm = '' -%}{%- endif %}"
        "{%- if sm is defined -%}{{- '<|system|>' + sm -}}{%- if tools is defined -%}"
        "{% for t in tools %}{{ t }}{% endfor %}{%- endif -%}{{- '<|end|>' -}}{%- endif -%}"
        "{%- for m in messages if m['role'] != 'system' -%}{{- '<|' + m['role'] + '|>' + "
        "m['content'] + '<|end|>' -}}{%- endfor -%}{%- if add_generation_prompt -%}"
        "{{- '<|assistant|>' -}}{%- endif -%}"
    )
    tmpl = convert_chat_template(phi4, eos_token="<|endoftext|>")
    assert tmpl.end_of_turn == "<|end|>"


def test_missing_chat_template_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="no chat template"):
        convert_chat_template(None)


HF_DOCS_CHAT = [
    {"role": "user", "content": "Hello, how are you?"},
    {"role": "assistant", "content": "I'm doing great. How can I help you today?"},
    {"role": "user", "content": "I'd like to show off how chat templating works!"},
]


def test_reference_copies_render_like_their_published_outputs() -> None:
    # transformers' chat templating docs, Mistral-7B-Instruct-v0.1:
    mistral = render_jinja(
        REF["mistral-v0.1"],
        HF_DOCS_CHAT,
        add_generation_prompt=False,
        bos_token="<s>",
        eos_token="</s>",
    )
    assert mistral == (
        "<s>[INST] Hello, how are you? [/INST]I'm doing great. How can I help you today?</s> "
        "[INST] I'd like to show off how chat templating works! [/INST]"
    )
    # ollama template/testdata/chatml.gotmpl/system-user-assistant-user:
    chatml = render_jinja(
        REF["qwen2"],
        [{"role": "system", "content": "You are a helpful assistant."}, *HF_DOCS_CHAT],
        add_generation_prompt=True,
    )
    assert chatml == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello, "
        "how are you?<|im_end|>\n<|im_start|>assistant\nI'm doing great. How can I help you "
        "today?<|im_end|>\n<|im_start|>user\nI'd like to show off how chat templating works!"
        "<|im_end|>\n<|im_start|>assistant\n"
    )


def test_training_pair_completion_ends_with_end_of_turn() -> None:
    prompt, completion = render_training_pair(
        REF["smollm2"], [{"role": "user", "content": "返品できますか？"}], "はい、できます。"
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "You are a helpful AI assistant named SmolLM" in prompt
    assert completion == "はい、できます。<|im_end|>\n"
    _, phi = render_training_pair(
        REF["phi3"], [{"role": "user", "content": "Hi"}], "Hello", eos_token="<|endoftext|>"
    )
    assert phi == "Hello<|end|>\n<|endoftext|>"


def test_template_raise_exception_becomes_chat_template_rejected() -> None:
    with pytest.raises(ChatTemplateRejected, match="System role not supported"):
        render_jinja(
            REF["gemma2"],
            [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
            add_generation_prompt=True,
        )


def test_invalid_jinja_reports_its_line() -> None:
    with pytest.raises(TemplateError, match=r"line 2"):
        render_jinja("ok\n{% if %}", [], add_generation_prompt=True)


def test_collate_adds_modelfile_system_and_merges_same_role_turns() -> None:
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
    ]
    assert collate_messages(msgs, system="S") == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c"},
    ]
    # A request that brings its own system message keeps it; the Modelfile SYSTEM is not added.
    own = [{"role": "system", "content": "mine"}, {"role": "user", "content": "q"}]
    assert collate_messages(own, system="S") == own


def test_first_difference_names_byte_offset_and_context() -> None:
    text = first_difference("<|im_start|>system\nあ<|im_end|>", "<|im_start|>system\nい<|im_end|>")
    assert "first differing byte at 19" in text
    assert "'<|im_start|>system\\nあ<|im_end|>'" in text


def test_load_template_file_reads_sibling_stop_json(tmp_path: Path) -> None:
    gotmpl = tmp_path / "mine.gotmpl"
    gotmpl.write_text("{{ range .Messages }}{{ .Content }}{{ end }}", encoding="utf-8")
    (tmp_path / "mine.json").write_text('{"stop": ["<|im_end|>"]}', encoding="utf-8")
    tmpl = load_template_file(gotmpl)
    assert (tmpl.family, tmpl.stop, tmpl.matched) == ("custom", ["<|im_end|>"], "file")
    assert load_template_file(gotmpl, stop=["X"]).stop == ["X"]


def test_load_template_file_rejects_empty_and_bad_stop_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gotmpl"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"empty\.gotmpl:1: the TEMPLATE file is empty"):
        load_template_file(empty)
    bad = tmp_path / "bad.gotmpl"
    bad.write_text("{{ .Prompt }}", encoding="utf-8")
    (tmp_path / "bad.json").write_text('{"stop": "<|im_end|>"}', encoding="utf-8")
    with pytest.raises(TemplateError, match="list of strings"):
        load_template_file(bad)


# microsoft/phi-4 tokenizer_config.json: ChatML with <|im_sep|> after the role, no newlines.
PHI4 = (
    "{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system"
    "<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}"
    "{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role"
    "'] == 'assistant') %}{{'<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>"
    "'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>"
    "' }}{% endif %}"
)


def test_phi4_im_sep_generation_prompt_is_kept() -> None:
    tmpl = convert_chat_template(PHI4, eos_token="<|im_end|>")
    assert tmpl.layout is not None
    text = tmpl.layout.render([{"role": "user", "content": "Hi"}])
    assert text == "<|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>"
    assert (tmpl.end_of_turn, tmpl.stop) == ("<|im_end|>", ["<|im_end|>"])
