"""Convert any Jinja chat template to an Ollama TEMPLATE by probing how it renders.

The chat template is rendered (with Hugging Face's Jinja environment, `jinja.py`) on small
conversations whose contents are unique markers; the text around the markers is the layout
(`layout.py`): what comes before the first message, between two turns, after the last user turn,
where the system prompt goes, a default system prompt, per-turn BOS, today's date, and the
generation prompt (with `enable_thinking=False` where the full render needs it, so the answer
follows the generation prompt as in training). The layout is then checked against the Jinja
template on the whole parity battery in Python; anything that does not fit is refused with one
line naming the construct and the escape hatch, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ollama_tune.errors import TemplateError
from ollama_tune.templates.jinja import render_jinja, strip_bos
from ollama_tune.templates.layout import (
    _SPECIAL,
    DATE_MARK,
    Layout,
    OllamaTemplate,
    dates_in,
    first_special,
    is_iso,
)

TEMPLATE_FILE_HINT = (
    "Write the Ollama TEMPLATE yourself (Go text/template over .System and .Messages; see "
    "https://github.com/ollama/ollama/blob/main/docs/template.md) and pass it with "
    "`--template FILE`, or use an Ollama library model's own with `--template ollama:NAME`."
)

_MARK = {"system": "SYSQZ{}", "user": "USRQZ{}", "assistant": "ASTQZ{}"}
_KWARGS_CANDIDATES: tuple[dict[str, Any], ...] = ({}, {"enable_thinking": False})


class _Refused(Exception):
    """A layout construct a fixed TEMPLATE cannot express (message names it)."""


def _refuse(what: str) -> TemplateError:
    return TemplateError(
        f"the chat template cannot be served by an Ollama TEMPLATE exactly: {what}",
        hint=TEMPLATE_FILE_HINT,
    )


class _Prober:
    def __init__(self, chat_template: str, bos: str | None, eos: str | None, kw: dict[str, Any]):
        self.t, self.bos, self.eos, self.kw = chat_template, bos or "", eos or "", kw
        self.error: str | None = None

    def render(
        self, roles: Sequence[str], gen: bool, contents: dict[int, str] | None = None
    ) -> str | None:
        msgs = []
        for n, role in enumerate(roles):
            content = (contents or {}).get(n, _MARK[role].format(n))
            msgs.append({"role": role, "content": content})
        try:
            out = render_jinja(
                self.t,
                msgs,
                add_generation_prompt=gen,
                bos_token=self.bos,
                eos_token=self.eos,
                strftime_now=lambda fmt: DATE_MARK.format(fmt),
                **self.kw,
            )
        except TemplateError as exc:  # rejected, or a branch that fails without tools
            self.error = self.error or exc.message
            return None
        return strip_bos(out, self.bos, self.t)

    def split(self, roles: Sequence[str], gen: bool) -> list[str] | None:
        """Text around each marker, in order; None when the template rejects the roles."""
        text = self.render(roles, gen)
        if text is None:
            return None
        return split_on_markers(text, [_MARK[r].format(n) for n, r in enumerate(roles)])


def split_on_markers(text: str, marks: list[str]) -> list[str] | None:
    """[before m0, between m0 and m1, ..., after the last]; None unless each is there once."""
    parts, pos = [], 0
    for m in marks:
        if text.count(m) != 1:
            return None
        i = text.find(m, pos)
        if i < 0:
            return None
        parts.append(text[pos:i])
        pos = i + len(m)
    parts.append(text[pos:])
    return parts


def _infer(p: _Prober) -> tuple[Layout, list[str]]:
    notes: list[str] = []
    u = p.split(["user"], True)
    uau = p.split(["user", "assistant", "user"], True)
    if u is None or uau is None:
        why = f" ({p.error})" if p.error else ""
        raise _Refused(
            "it does not render a plain user/assistant conversation with each message once, "
            f"in order{why}"
        )
    head_u, gen = u
    if uau[0] != head_u or uau[3] != gen:
        raise _Refused(
            "the text around the first user turn changes once the conversation has more turns"
        )
    sep = {("user", "assistant"): uau[1], ("assistant", "user"): uau[2]}
    five = p.split(["user", "assistant", "user", "assistant", "user"], True)
    if five is None or five[1:5] != [uau[1], uau[2], uau[1], uau[2]]:
        raise _Refused(
            "the separators between turns change from turn to turn (a turn counter or loop.index)"
        )
    layout = _empty_answer(p, Layout({"user": head_u, "assistant": head_u}, sep, gen), notes)
    return _with_system(p, layout, notes), notes


def _empty_answer(p: _Prober, base: Layout, notes: list[str]) -> Layout:
    """An empty assistant turn printed with other whitespace (GLM's `<think></think>`)."""
    u0, u2 = _MARK["user"].format(0), _MARK["user"].format(2)
    ua, au = base.sep[("user", "assistant")], base.sep[("assistant", "user")]
    text = p.render(["user", "assistant", "user"], True, {1: ""})
    parts = split_on_markers(text or "", [u0, u2])
    if parts is None or parts[1] == ua + au or parts[0] != base.head["user"]:
        return base
    notes.append("the chat template prints an empty answer differently from other answers")
    sep = {**base.sep, ("user", "eassistant"): parts[1], ("eassistant", "user"): ""}
    return Layout({**base.head, "eassistant": base.head["user"]}, sep, base.gen)


def _with_system(p: _Prober, base: Layout, notes: list[str]) -> Layout:
    su = p.render(["system", "user"], True)
    s_mark, u_mark = _MARK["system"].format(0), _MARK["user"].format(1)
    if su is None or s_mark not in su:
        what = "rejects" if su is None else "drops"
        notes.append(
            f"the chat template {what} system messages: the TEMPLATE puts SYSTEM before the first "
            "user message's text, a prompt this model never saw in pretraining"
        )
        return Layout(base.head, base.sep, base.gen, system_mode="fold")
    parts = split_on_markers(su, [s_mark, u_mark])
    if parts is not None and parts[2] == base.gen:
        try:
            return _system_in_turn(p, base, parts, notes)
        except _Refused:
            pass  # maybe the system prompt moves with the last user turn (Mistral v0.3)
    # Is the system text inside the last user turn (Mistral v0.3)?
    suau = p.render(["system", "user", "assistant", "user"], True)
    marks = [_MARK["user"].format(1), _MARK["assistant"].format(2), s_mark, _MARK["user"].format(3)]
    q = split_on_markers(suau or "", marks)
    parts2 = split_on_markers(su, [s_mark, u_mark])
    if q is None or parts2 is None or not q[2].startswith(base.sep[("assistant", "user")]):
        raise _Refused("the system prompt is printed somewhere a TEMPLATE cannot reproduce")
    sys_pre = q[2][len(base.sep[("assistant", "user")]) :]
    if q[0] != base.head["user"] or q[1] != base.sep[("user", "assistant")] or q[4] != base.gen:
        raise _Refused("the turns around a system prompt inside the last user turn change shape")
    if parts2[0] != base.head["user"] + sys_pre or parts2[1] != q[3]:
        raise _Refused(
            "the system prompt inside the last user turn is printed differently in the first"
        )
    notes.append("the chat template puts the system prompt inside the last user turn")
    return Layout(base.head, base.sep, base.gen, "last_user", sys_pre, q[3])


def _system_in_turn(p: _Prober, base: Layout, parts: list[str], notes: list[str]) -> Layout:
    head = {**base.head, "system": parts[0]}
    sep = {**base.sep, ("system", "user"): parts[1]}
    ua, au = base.sep[("user", "assistant")], base.sep[("assistant", "user")]
    suau = p.split(["system", "user", "assistant", "user"], True)
    if suau is None or suau != [*parts[:2], ua, au, base.gen]:
        raise _Refused("the turns after a system prompt are printed differently than without one")
    # A system message after the first turn (rare in data): kept only when it reads the same.
    mid = p.split(["user", "assistant", "system", "user"], True)
    if mid is not None and mid[:2] == [base.head["user"], ua] and mid[3:] == [parts[1], base.gen]:
        sep[("assistant", "system")] = mid[2]
    layout = Layout(head, sep, base.gen)
    # An empty system message: printed like any other, or dropped (Phi-3.5, Laguna).
    u1 = _MARK["user"].format(1)
    empty = p.render(["system", "user"], True, {0: ""})
    if empty is not None and empty != parts[0] + parts[1] + u1 + base.gen:
        around = split_on_markers(empty, [u1])
        if around is not None and around[1] == base.gen:
            notes.append("the chat template prints an empty system message as if there were none")
            head = {**head, "esys": ""}
            sep[("esys", "user")] = around[0]
            layout = Layout(head, sep, base.gen)
    return layout


def _default_system(layout: Layout) -> str | None:
    """The system text the template prints when none is given (Qwen's "You are Qwen...")."""
    pre, post, head_u = (
        layout.head.get("system"),
        layout.sep.get(("system", "user")),
        layout.head["user"],
    )
    if layout.system_mode != "turn" or pre is None or post is None:
        return None
    if head_u.startswith(pre) and head_u.endswith(post) and len(head_u) >= len(pre) + len(post):
        found = head_u[len(pre) : len(head_u) - len(post)]
        # One with today's date stays in the TEMPLATE only: as SYSTEM the date would be fixed.
        return None if dates_in(Layout({"user": found}, {}, "")) else (found or None)
    return None


def _end_of_turn(p: _Prober, layout: Layout) -> tuple[str, str, bool, bool]:
    """(text before the answer, after it, whether the template prints the latter, native).

    A training completion is what the chat template prints after the generation prompt for the
    answer: a prefix (Llama 2's space, Qwen3's empty `<think>` block), the answer, then up to
    and including the first special token (`<|im_end|>`, ` </s>`), or EOS when the template
    prints none (training teaches the stop). `native` is False when the template's prompt is
    not a prefix of its full render (DeepSeek-R1's `<think>` prompt): then there is no prefix.
    """
    prompt = p.render(["user"], True)
    full = p.render(["user", "assistant"], False) or ""
    answer = _MARK["assistant"].format(1)
    native = bool(prompt is not None and full.startswith(prompt) and answer in full[len(prompt) :])
    lead = full[len(prompt or "") : full.find(answer)] if native else ""
    after = full.split(answer, 1)[1] if answer in full else ""
    if not after:  # nothing printed after an answer: EOS ends the completion
        return lead, p.eos, False, native
    between = layout.sep[("assistant", "user")]
    common = _common_prefix(after, between) if after and between else (after or between)
    for text in (common, after):
        cut = first_special(text, p.eos)
        if cut:
            return lead, text[:cut], True, native
    return lead, p.eos, False, native


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _family(layout: Layout) -> str:
    text = layout.head["user"] + layout.sep[("assistant", "user")]
    for marker, name in (
        ("<|im_start|>", "chatml"),
        ("<|start_header_id|>", "llama3"),
        ("[INST]", "mistral"),
        ("<start_of_turn>", "gemma"),
        ("<|end|>", "phi3"),
        ("<|user|>", "zephyr"),
        ("<|START_OF_TURN_TOKEN|>", "command-r"),
        ("<｜User｜>", "deepseek"),
        ("<|start_of_role|>", "granite"),
    ):
        if marker in text:
            return name
    return "custom"


def _stops(end_of_turn: str, eos: str | None) -> list[str]:
    out = [m.group(0) for m in _SPECIAL.finditer(end_of_turn)][-1:]
    if not out and end_of_turn.strip():
        out = [end_of_turn.strip()]
    if eos and eos not in out:
        out.append(eos)
    return out


def convert_chat_template(
    chat_template: str | None, *, bos_token: str | None = None, eos_token: str | None = None
) -> OllamaTemplate:
    """Turn a tokenizer's Jinja chat template into an Ollama TEMPLATE + stop tokens.

    Raises TemplateError (one line, with the `--template FILE` / `ollama:NAME` hint) when the
    chat template does something a fixed TEMPLATE cannot reproduce.
    """
    if not chat_template or not chat_template.strip():
        raise TemplateError(
            "the tokenizer has no chat template, so there is no prompt format to carry into Ollama",
            hint=TEMPLATE_FILE_HINT,
        )
    first: OllamaTemplate | None = None
    reason = ""
    for kw in _KWARGS_CANDIDATES:
        try:
            tmpl = _convert(chat_template, bos_token, eos_token, dict(kw))
        except _Refused as exc:
            reason = reason or str(exc)
            continue
        if tmpl.native_completion:
            return tmpl
        first = first or tmpl
    if first is not None:
        return first
    raise _refuse(reason)


def _convert(
    chat_template: str, bos: str | None, eos: str | None, kw: dict[str, Any]
) -> OllamaTemplate:
    p = _Prober(chat_template, bos, eos, kw)
    layout, notes = _infer(p)
    lead, eot, printed, native = _end_of_turn(p, layout)
    if kw and not native:
        raise _Refused("the answer does not follow the generation prompt")
    for fmt in dates_in(layout):
        if not is_iso(fmt):
            notes.append(
                f"the chat template prints today's date as {fmt!r}; Ollama's TEMPLATE can only "
                f"print it as YYYY-MM-DD, so the date of this conversion is fixed in the TEMPLATE"
            )
    if re.search(r"\|\s*trim\b", chat_template):
        notes.append(
            "the chat template strips whitespace around message content and Ollama does not: "
            "keep data free of leading/trailing whitespace"
        )
    if lead.strip():
        notes.append(
            f"training completions start with {lead!r}, as the chat template renders answers"
        )
    if kw:
        notes.append(
            f"served as the chat template renders with {kw} (its answer follows the prompt)"
        )
    if not native:
        notes.append(
            "the chat template's generation prompt does not prefix its own rendered answer (a "
            "reasoning block): training completions are the answer and end-of-turn after it"
        )
    if not printed:
        notes.append(
            "the chat template prints no end-of-turn token after an answer: training completions "
            "end with EOS so the model learns to stop"
        )
    tmpl = OllamaTemplate(
        family=_family(layout),
        template=layout.go_template(),
        stop=_stops(eot, eos),
        default_system=_default_system(layout),
        notes=notes,
        answer_prefix=lead,
        end_of_turn=eot,
        end_of_turn_printed=printed,
        jinja_kwargs=kw,
        native_completion=native,
        system_supported=layout.system_mode != "fold",
        layout=layout,
    )
    from ollama_tune.templates.parity import check_parity

    result = check_parity(chat_template, tmpl, bos_token=bos, eos_token=eos, renderer="python")
    if not result.ok:
        bad = result.failures[0] if result.failures else None
        raise _Refused(
            f"on the conversation {bad.describe()}"
            if bad
            else "no conversation of the check could be rendered by the chat template"
        )
    return tmpl
