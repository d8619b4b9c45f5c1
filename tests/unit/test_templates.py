"""Chat template detection, conversion and Jinja rendering (no Go needed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_tune.errors import TemplateError
from ollama_tune.templates import (
    STOP_TOKENS,
    ChatTemplateRejected,
    collate_messages,
    convert_chat_template,
    detect_family,
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
def test_every_reference_template_is_detected_exactly(variant: str) -> None:
    family, found_variant, how = detect_family(REF[variant])
    assert (family, found_variant, how) == (EXPECTED_FAMILY[variant], variant, "exact")


@pytest.mark.parametrize("variant", sorted(EXPECTED_FAMILY))
def test_edited_templates_are_detected_by_markers(variant: str) -> None:
    # A comment makes the text differ from every reference, so detection falls back to markers.
    family, found_variant, how = detect_family(REF[variant] + "{# local edit #}")
    assert (family, found_variant, how) == (EXPECTED_FAMILY[variant], None, "markers")


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
    ("variant", "eos", "must_stop_on"),
    [
        ("smollm2", "<|im_end|>", ["<|im_end|>", "<|im_start|>"]),
        ("llama3.1", "<|eot_id|>", ["<|eot_id|>", "<|start_header_id|>"]),
        ("mistral-v0.3", "</s>", ["[INST]", "</s>"]),
        ("gemma3", "<eos>", ["<end_of_turn>", "<start_of_turn>"]),
        ("phi3", "<|endoftext|>", ["<|end|>", "<|user|>", "<|endoftext|>"]),
        ("zephyr", "</s>", ["</s>", "<|user|>"]),
    ],
)
def test_stop_tokens_cover_end_of_turn(variant: str, eos: str, must_stop_on: list[str]) -> None:
    out = convert_chat_template(REF[variant], eos_token=eos)
    assert set(must_stop_on) <= set(out.stop)
    assert set(STOP_TOKENS[out.family]) <= set(out.stop)


def test_llama31_preamble_and_eos_are_baked_into_the_go_template() -> None:
    llama = convert_chat_template(REF["llama3.1"], bos_token="<|begin_of_text|>")
    assert "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" in llama.template
    assert "<|begin_of_text|>" not in llama.template  # llama.cpp adds BOS itself
    zephyr = convert_chat_template(REF["zephyr"], eos_token="<EOT>")
    assert "{{ .Content }}<EOT>" in zephyr.template


@pytest.mark.parametrize(
    "template",
    [
        "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
        REF["llama3"].replace("<|start_header_id|>", "<|header|>"),
    ],
)
def test_unknown_template_fails_closed_with_escape_hatch(template: str) -> None:
    with pytest.raises(TemplateError) as err:
        convert_chat_template(template)
    assert "not recognised" in err.value.message
    assert err.value.hint and "--template FILE" in err.value.hint


def test_llama2_sys_template_is_refused_rather_than_guessed() -> None:
    llama2 = "{% for m in messages %}{{ bos_token + '[INST] <<SYS>>' + m['content'] }}{% endfor %}"
    with pytest.raises(TemplateError, match="not recognised"):
        convert_chat_template(llama2)


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
