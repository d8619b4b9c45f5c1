"""Go rendering follows Ollama's feeding rules (real `go`; a missing toolchain fails, not skips)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_tune.errors import TemplateError
from ollama_tune.templates import (
    check_parity,
    check_template_file,
    convert_chat_template,
    go_available,
    render_go,
    render_go_many,
)
from ollama_tune.templates._reference import REFERENCE_TEMPLATES

REF = {r.variant: r.jinja for r in REFERENCE_TEMPLATES}
DUMP = "{{ range .Messages }}[{{ .Role }}]{{ .Content }}{{ end }}|{{ .System }}"


def _m(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def test_go_toolchain_is_present() -> None:
    assert go_available(), "the parity check needs Go: apt-get install golang-go"


def test_modelfile_system_is_added_only_when_request_has_none() -> None:
    assert render_go(DUMP, [_m("user", "q")], system="S") == "[system]S[user]q|S"
    assert render_go(DUMP, [_m("system", "own"), _m("user", "q")], system="S") == (
        "[system]own[user]q|own"
    )
    assert render_go(DUMP, [_m("user", "q")]) == "[user]q|"


def test_same_role_turns_merge_and_all_systems_join_into_dot_system() -> None:
    msgs = [_m("system", "X"), _m("system", "Y"), _m("user", "a"), _m("user", "b")]
    msgs += [_m("assistant", "c"), _m("system", "Z")]
    assert render_go(DUMP, msgs) == "[system]X\n\nY[user]a\n\nb[assistant]c[system]Z|X\n\nY\n\nZ"


def test_modelfile_messages_come_before_the_request() -> None:
    shots = [_m("user", "fq"), _m("assistant", "fa")]
    out = render_go(DUMP, [_m("user", "q")], system="S", modelfile_messages=shots)
    assert out == "[system]S[user]fq[assistant]fa[user]q|S"


def test_legacy_prompt_response_template_is_executed_per_exchange() -> None:
    legacy = (
        "{{ if .System }}<s>{{ .System }}</s>{{ end }}<u>{{ .Prompt }}</u><a>{{ .Response }}</a>"
    )
    msgs = [_m("system", "S"), _m("user", "q1"), _m("assistant", "a1"), _m("user", "q2")]
    # Earlier exchanges render whole; the last run is cut right before {{ .Response }}.
    assert render_go(legacy, msgs) == "<s>S</s><u>q1</u><a>a1</a><u>q2</u><a>"


def test_template_without_response_gets_one_appended_like_ollama() -> None:
    assert render_go("<u>{{ .Prompt }}</u>", [_m("user", "q")]) == "<u>q</u>"


def test_go_errors_are_template_errors_and_batches_report_per_job() -> None:
    with pytest.raises(TemplateError, match='function "trim" not defined'):
        render_go("{{ trim .Prompt }}", [_m("user", "q")])
    ok, bad = render_go_many(
        "{{ with index .Messages 1 }}{{ .Content }}{{ end }}",
        [[_m("user", "a"), _m("assistant", "b")], []],
    )
    assert (ok.output, ok.error) == ("b", None)
    assert bad.error is not None and "out of range" in bad.error


def test_double_system_prompt_template_is_caught() -> None:
    # A common hand-written mistake: prints .System AND the system entries of .Messages.
    doubled = (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
        "<|im_start|>assistant\n"
    )
    result = check_parity(REF["chatml"], doubled, conversations=_user_ending_battery())
    assert not result.ok
    failed = {c.name for c in result.failures}
    assert "system + user" in failed and "user only" not in failed
    case = next(c for c in result.failures if c.name == "system + user")
    assert case.actual.count("You are a concise support assistant.") == 2
    # Both then print "<|im_start|>": Jinja goes on with "user", the doubled TEMPLATE with "system".
    block = "<|im_start|>system\nYou are a concise support assistant.<|im_end|>\n"
    assert case.diff_at == len(block + "<|im_start|>")
    # With a Modelfile SYSTEM the prompt doubles even when the request has no system message.
    with_system = check_parity(REF["chatml"], doubled, system="Be brief.")
    assert "user only" in {c.name for c in with_system.failures}
    with pytest.raises(TemplateError, match="first differing byte at"):
        with_system.raise_for_failure()


def _user_ending_battery() -> list[tuple[str, list[dict[str, str]]]]:
    from ollama_tune.templates import BATTERY

    return [(n, list(c)) for n, c in BATTERY if c[-1]["role"] == "user"]


def test_converted_smollm2_template_is_identical_for_every_conversation() -> None:
    result = check_parity(REF["smollm2"], convert_chat_template(REF["smollm2"]))
    assert result.ok, result.summary()
    assert len(result.compared) == len(result.cases) >= 10


def test_bos_is_only_dropped_when_the_template_prints_it() -> None:
    # SmolLM2's GGUF names <|im_start|> as BOS; its template never prints bos_token.
    tmpl = convert_chat_template(REF["smollm2"], bos_token="<|im_start|>")
    result = check_parity(REF["smollm2"], tmpl, bos_token="<|im_start|>")
    assert result.ok, result.summary()
    assert not result.bos_stripped


def test_template_file_escape_hatch_runs_parity_and_reports_lines(tmp_path: Path) -> None:
    good = tmp_path / "good.gotmpl"
    good.write_text(convert_chat_template(REF["chatml"]).template, encoding="utf-8")
    tmpl, result = check_template_file(good, REF["chatml"], stop=["<|im_end|>"])
    assert result.ok and tmpl.stop == ["<|im_end|>"]

    broken = tmp_path / "broken.gotmpl"
    broken.write_text("{{ range .Messages }}\n{{ .Content }\n{{ end }}", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"broken\.gotmpl:2: the TEMPLATE does not work"):
        check_template_file(broken, REF["chatml"])

    wrong = tmp_path / "wrong.gotmpl"
    wrong.write_text(
        "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>{{ end }}"
        "<|im_start|>assistant\n",
        encoding="utf-8",
    )
    _, mismatch = check_template_file(wrong, REF["chatml"])
    assert not mismatch.ok
    assert "first differing byte at" in mismatch.summary()


# Ported from ollama/ollama template/template_test.go TestExecuteWithMessages (MIT): the Go
# renderer must give Ollama's own expected output for messages and legacy templates alike.
_MISTRAL_SYS = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}"
_OLLAMA_CASES = [
    (
        [
            _MISTRAL_SYS + "{{ .Prompt }}[/INST] ",
            _MISTRAL_SYS + "{{ .Prompt }}[/INST] {{ .Response }}",
            _MISTRAL_SYS + '\n{{- range .Messages }}\n{{- if eq .Role "user" }}{{ .Content }}'
            '[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}[INST] {{ end }}\n{{- end }}',
        ],
        [
            _m("user", "Hello friend!"),
            _m("assistant", "Hello human!"),
            _m("user", "What is your name?"),
        ],
        "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] ",
    ),
    (
        [
            _MISTRAL_SYS + "{{ .Prompt }}[/INST] ",
            _MISTRAL_SYS + "{{ .Prompt }}[/INST] {{ .Response }}",
            _MISTRAL_SYS + '\n{{- range .Messages }}\n{{- if eq .Role "user" }}{{ .Content }}'
            '[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}[INST] {{ end }}\n{{- end }}',
        ],
        [
            _m("system", "You are a helpful assistant!"),
            _m("user", "Hello friend!"),
            _m("assistant", "Hello human!"),
            _m("user", "What is your name?"),
        ],
        "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is "
        "your name?[/INST] ",
    ),
    (
        [
            "[INST] {{ .Prompt }}[/INST] ",
            "[INST] {{ .Prompt }}[/INST] {{ .Response }}",
            '\n{{- range $i, $m := .Messages }}\n{{- if eq .Role "user" }}[INST] {{ .Content }}'
            '[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}{{ end }}\n{{- end }}',
        ],
        [
            _m("user", "Hello friend!"),
            _m("assistant", "Hello human!"),
            _m("user", "What is your name?"),
            _m("assistant", "My name is Ollama and I"),
        ],
        "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is "
        "Ollama and I",
    ),
    (
        [
            "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}"
            "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
            "{{ .Response }}<|im_end|>\n",
            "\n{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}"
            "<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        ],
        [
            _m("system", "You are a helpful assistant!"),
            _m("user", "Hello friend!"),
            _m("assistant", "Hello human!"),
            _m("user", "What is your name?"),
        ],
        "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n<|im_start|>user\nHello "
        "friend!<|im_end|>\n<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\n"
        "What is your name?<|im_end|>\n<|im_start|>assistant\n",
    ),
]


@pytest.mark.parametrize(("templates", "messages", "expected"), _OLLAMA_CASES)
def test_go_renderer_reproduces_ollamas_own_expected_outputs(
    templates: list[str], messages: list[dict[str, str]], expected: str
) -> None:
    for template in templates:
        assert render_go(template, messages) == expected, template
