"""The parity check: the Ollama TEMPLATE must print byte for byte what the chat template prints.

For a battery of conversations (with and without system, multi-turn, Japanese, empty content,
consecutive same-role turns, generation prompt and full training text), the Jinja side renders
the conversation as Ollama will hand it over (Modelfile SYSTEM added, same-role turns merged) and
the Go side renders the raw request through Go's `text/template` with Ollama's feeding rules.
Conversations that end with an answer compare the training text (the TEMPLATE's prompt, the
answer, the end-of-turn token) with the chat template's own full render. A leading BOS token that
the chat template prints (`{{ bos_token }}`) is dropped from the Jinja side: llama.cpp adds BOS
itself when it tokenizes the prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune.errors import TemplateError
from ollama_tune.templates.gorender import collate_messages, render_go_many
from ollama_tune.templates.jinja import ChatTemplateRejected, render_jinja, strip_bos
from ollama_tune.templates.layout import OllamaTemplate

Conversation = Sequence[dict[str, str]]

_SYS = "あなたは株式会社サンプルのサポート担当です。丁寧に、簡潔に答えてください。"
_SYS_EN = "You are a concise support assistant."


def _m(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


# (name, messages). A conversation ending in a user turn is compared with the generation
# prompt; one ending in an assistant turn is compared as full training text.
BATTERY: tuple[tuple[str, tuple[dict[str, str], ...]], ...] = (
    ("user only", (_m("user", "How do I reset my password?"),)),
    ("system + user", (_m("system", _SYS_EN), _m("user", "Hello"))),
    (
        "system + multi-turn",
        (
            _m("system", _SYS_EN),
            _m("user", "What are your opening hours?"),
            _m("assistant", "We are open 9:00-18:00 on weekdays."),
            _m("user", "And on Saturday?"),
        ),
    ),
    (
        "multi-turn without system",
        (
            _m("user", "Hi"),
            _m("assistant", "Hello! How can I help?"),
            _m("user", "Where is my order?"),
            _m("assistant", "Please tell me the order number."),
            _m("user", "A-1234"),
        ),
    ),
    (
        "japanese",
        (
            _m("system", _SYS),
            _m("user", "返品はできますか？"),
            _m("assistant", "はい、商品到着後30日以内であれば返品できます。"),
            _m("user", "送料は誰が負担しますか？"),
        ),
    ),
    ("empty user content", (_m("user", "Hi"), _m("assistant", "Hello"), _m("user", ""))),
    ("empty system", (_m("system", ""), _m("user", "Hello"))),
    ("empty assistant turn", (_m("user", "Hi"), _m("assistant", ""), _m("user", "Hello?"))),
    ("consecutive user turns", (_m("user", "First part."), _m("user", "Second part."))),
    (
        "multi-line and markup content",
        (_m("user", 'Line 1\nLine 2\n\n{{ .System }} <b>"a" & b</b>'),),
    ),
    (
        "full conversation",
        (_m("user", "Do you ship abroad?"), _m("assistant", "Yes, to 30 countries.")),
    ),
    (
        "full conversation with system",
        (
            _m("system", _SYS),
            _m("user", "営業時間は？"),
            _m("assistant", "平日9時から18時までです。"),
        ),
    ),
)


@dataclass(frozen=True)
class ParityCase:
    name: str
    add_generation_prompt: bool
    expected: str = ""  # Jinja (what training saw)
    actual: str = ""  # Go (what Ollama will feed the model)
    skipped: str | None = None  # why the case could not be compared
    error: str | None = None  # Go's error text
    diff_at: int | None = None  # first differing byte (UTF-8) when they differ

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None and self.expected == self.actual

    def describe(self) -> str:
        if self.skipped:
            return f"{self.name}: skipped ({self.skipped})"
        if self.error:
            return f"{self.name}: the Go TEMPLATE failed: {self.error}"
        if self.ok:
            return f"{self.name}: identical ({len(self.expected.encode())} bytes)"
        return f"{self.name}: {first_difference(self.expected, self.actual)}"


@dataclass(frozen=True)
class ParityResult:
    family: str | None
    cases: list[ParityCase] = field(default_factory=list)
    bos_stripped: bool = False

    @property
    def compared(self) -> list[ParityCase]:
        return [c for c in self.cases if c.skipped is None]

    @property
    def failures(self) -> list[ParityCase]:
        return [c for c in self.compared if not c.ok]

    @property
    def ok(self) -> bool:
        return bool(self.compared) and not self.failures

    def summary(self) -> str:
        n, bad = len(self.compared), len(self.failures)
        skipped = len(self.cases) - n
        head = f"template parity: {n - bad}/{n} conversations identical" + (
            f", {skipped} skipped" if skipped else ""
        )
        return "\n".join([head, *(c.describe() for c in self.failures)])

    def raise_for_failure(self) -> None:
        if not self.ok:
            raise TemplateError(self.summary(), hint=_PARITY_HINT)


_PARITY_HINT = (
    "The Ollama TEMPLATE would feed the model a different prompt than training used. Fix the "
    "TEMPLATE (or pass your own with --template FILE) until every conversation is identical."
)


def _first_char_diff(expected: str, actual: str) -> int:
    n = min(len(expected), len(actual))
    return next((k for k in range(n) if expected[k] != actual[k]), n)


def first_difference(expected: str, actual: str, context: int = 24) -> str:
    """Where two renderings first differ, as UTF-8 byte offset plus a little text either side."""
    i = _first_char_diff(expected, actual)
    lo = max(0, i - context)
    at = len(expected[:i].encode("utf-8"))
    return (
        f"first differing byte at {at} (chat template {len(expected.encode())} bytes, Ollama "
        f"TEMPLATE {len(actual.encode())} bytes): chat template …{expected[lo : i + context]!r}… "
        f"vs Ollama TEMPLATE …{actual[lo : i + context]!r}…"
    )


def _diff_at(expected: str, actual: str) -> int | None:
    if expected == actual:
        return None
    return len(expected[: _first_char_diff(expected, actual)].encode("utf-8"))


def _render_all(
    tmpl: OllamaTemplate | str, convs: Sequence[Conversation], system: str | None, renderer: str
) -> list[tuple[str, str | None]]:
    """(output, Go error) per conversation, fed as Ollama feeds a TEMPLATE."""
    if renderer == "python":
        layout = tmpl.layout if isinstance(tmpl, OllamaTemplate) else None
        if layout is None:
            raise TemplateError("only a converted TEMPLATE can be checked without Go")
        return [(layout.render(collate_messages(c, system=system)), None) for c in convs]
    text = tmpl.template if isinstance(tmpl, OllamaTemplate) else tmpl
    return [(r.output, r.error) for r in render_go_many(text, convs, system=system)]


def check_parity(
    chat_template: str,
    ollama_template: OllamaTemplate | str,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    system: str | None = None,
    conversations: Sequence[tuple[str, Conversation]] | None = None,
    renderer: str = "go",
) -> ParityResult:
    """Render every conversation both ways and compare bytes.

    A conversation ending in a user turn compares the generation prompt. One ending in an
    assistant turn compares the training text: the TEMPLATE's prompt for the turns before the
    answer, then the answer and the end-of-turn token, against the chat template's full render.
    `system` is the Modelfile SYSTEM (default: the template's `default_system`). `renderer`
    "go" needs the `go` toolchain; "python" uses the converted layout (`layout.py`).
    """
    tmpl = ollama_template if isinstance(ollama_template, OllamaTemplate) else None
    if tmpl is not None and system is None:
        system = tmpl.default_system
    # An end-of-turn the chat template never prints (EOS added by training) is not compared.
    eot = tmpl.end_of_turn if tmpl is not None and tmpl.end_of_turn_printed else ""
    lead = tmpl.answer_prefix if tmpl is not None else ""
    kwargs = tmpl.jinja_kwargs if tmpl is not None else {}
    battery = list(conversations if conversations is not None else BATTERY)
    prompts = [list(conv[:-1]) if _closed(conv) else list(conv) for _, conv in battery]
    rendered = _render_all(ollama_template, prompts, system, renderer)
    cases: list[ParityCase] = []
    stripped = False
    for (name, conv), (out, error) in zip(battery, rendered, strict=True):
        gen = not _closed(conv)
        collated = collate_messages(conv, system=system)
        try:
            render = _jinja(chat_template, bos_token, eos_token, kwargs)
            expected = render(collated, gen)
            why = _skip_reason(tmpl, collated, gen)
            if why is None and not gen and not expected.startswith(render(collated[:-1], True)):
                why = "the chat template's prompt is not a prefix of its own full render here"
        except ChatTemplateRejected as exc:
            why = exc.message
        if why is not None:
            cases.append(ParityCase(name, gen, skipped=why))
            continue
        cut = strip_bos(expected, bos_token, chat_template)
        stripped = stripped or cut != expected
        actual = out if gen or error else out + lead + conv[-1]["content"] + eot
        if not gen and cut.startswith(actual):
            cut = cut[: len(actual)]  # what follows the end-of-turn token is never trained
        cases.append(
            ParityCase(
                name,
                gen,
                expected=cut,
                actual=actual,
                error=error,
                diff_at=None if error else _diff_at(cut, actual),
            )
        )
    return ParityResult(tmpl.family if tmpl else None, cases, stripped)


def _closed(conv: Conversation) -> bool:
    return bool(conv) and conv[-1]["role"] == "assistant"


def _jinja(
    chat_template: str, bos: str | None, eos: str | None, kwargs: dict[str, Any]
) -> Callable[[list[dict[str, str]], bool], str]:
    def render(messages: list[dict[str, str]], gen: bool) -> str:
        return render_jinja(
            chat_template,
            messages,
            add_generation_prompt=gen,
            bos_token=bos,
            eos_token=eos,
            **kwargs,
        )

    return render


def _skip_reason(
    tmpl: OllamaTemplate | None, collated: list[dict[str, str]], gen: bool
) -> str | None:
    if tmpl is None:
        return None
    if not gen and not tmpl.native_completion:
        return "the chat template's prompt does not prefix its own full render (reasoning block)"
    if not tmpl.system_supported and any(m["role"] == "system" for m in collated):
        return "the chat template drops system messages (the TEMPLATE folds SYSTEM into the prompt)"
    return None


def load_template_file(path: str | Path, *, stop: Sequence[str] | None = None) -> OllamaTemplate:
    """Load a hand-written Ollama TEMPLATE (the `--template FILE` escape hatch).

    The file holds the Go template text (like ollama's `template/*.gotmpl`). Stop tokens come
    from `stop`, else from a sibling `<name>.json` holding {"stop": [...]} (ollama's layout).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(
            f"{path}: cannot read the TEMPLATE file: {exc}",
            hint="Pass a UTF-8 text file holding the Go TEMPLATE.",
        ) from None
    if not text.strip():
        raise TemplateError(f"{path}:1: the TEMPLATE file is empty", hint="Write the Go TEMPLATE.")
    stops = list(stop) if stop is not None else _sibling_stops(path)
    prefix, eot = "", stops[0] if stops else ""
    if not stops:
        # No stop parameters given: read the end of turn off Go renderings of the TEMPLATE, so
        # training completions end with it and the model learns to stop.
        from ollama_tune.templates.ollama_source import answer_frame

        prefix, eot = answer_frame(text, stops)
        stops = [eot.strip()] if eot.strip() else []
    return OllamaTemplate(
        "custom",
        text,
        stops,
        None,
        None,
        "file",
        [f"TEMPLATE from {path}"],
        answer_prefix=prefix,
        end_of_turn=eot,
    )


def _sibling_stops(path: Path) -> list[str]:
    params = path.with_suffix(".json")
    if not params.is_file():
        return []
    try:
        data = json.loads(params.read_text(encoding="utf-8"))
        stops = data.get("stop", [])
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise ValueError('"stop" must be a list of strings')
    except (ValueError, AttributeError) as exc:
        raise TemplateError(
            f"{params}: cannot read stop tokens: {exc}",
            hint='Write {"stop": ["<|im_end|>", ...]} or pass the stop tokens explicitly.',
        ) from None
    return list(stops)


def check_template_file(
    path: str | Path,
    chat_template: str,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    stop: Sequence[str] | None = None,
    system: str | None = None,
) -> tuple[OllamaTemplate, ParityResult]:
    """Load a user's TEMPLATE file and run the parity check on it.

    Go parse errors are reported as `FILE:LINE`; differences as the first differing byte.
    """
    tmpl = load_template_file(path, stop=stop)
    result = check_parity(
        chat_template, tmpl, bos_token=bos_token, eos_token=eos_token, system=system
    )
    errors = [c.error for c in result.cases if c.error]
    if errors:
        m = re.match(r"template: :(\d+):\s*(.*)", errors[0], re.S)
        where = f"{path}:{m.group(1)}" if m else str(path)
        raise TemplateError(
            f"{where}: the TEMPLATE does not work in Go's text/template: "
            f"{m.group(2) if m else errors[0]}",
            hint="Ollama parses TEMPLATE with Go text/template; fix the syntax at that line.",
        )
    return tmpl, result
