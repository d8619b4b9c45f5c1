"""Turn an `EvalResult` into the report's view model, Markdown and self-contained HTML.

Everything from models and data is escaped: jinja2 autoescape in the HTML, `html.escape` plus
table-pipe escaping in the Markdown (Markdown renderers pass raw HTML through).
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from importlib import resources
from typing import Any

from ollama_tune.evaluate.compare import EvalResult, ModelAnswer
from ollama_tune.evaluate.metrics import METRICS


def summary_rows(result: EvalResult) -> list[dict[str, Any]]:
    """One row per metric measured for some model: cells with text and whether it is best."""
    rows = []
    for name, info in METRICS.items():
        values = [m.metrics.get(name) for m in result.models]
        if all(v is None for v in values):
            continue
        best = info.best(values) if len(values) > 1 else None
        cells = [
            {"text": info.format(v), "best": v is not None and best is not None and v == best}
            for v in values
        ]
        rows.append({"name": name, "label": info.label, "cells": cells})
    return rows


def highlight(text: str, needles: list[str]) -> list[tuple[str, bool]]:
    """Split `text` into (segment, is_fact) pieces, marking where a fact string occurs.

    Matching is per-character NFKC + lower case, so "５営業日" in an answer lights up for the
    fact "5営業日"; folded ranges (5から7) are only shown in the found/missed list.
    """
    folded, index = [], []
    for i, ch in enumerate(text):
        for f in unicodedata.normalize("NFKC", ch).lower():
            folded.append(f)
            index.append(i)
    flat = "".join(folded)
    marks = [False] * len(text)
    for needle in needles:
        n = unicodedata.normalize("NFKC", needle).lower().strip()
        if not n:
            continue
        for m in re.finditer(re.escape(n), flat):
            for j in range(m.start(), m.end()):
                marks[index[j]] = True
    pieces: list[tuple[str, bool]] = []
    for ch, mark in zip(text, marks, strict=True):
        if pieces and pieces[-1][1] == mark:
            pieces[-1] = (pieces[-1][0] + ch, mark)
        else:
            pieces.append((ch, mark))
    return pieces


def _answer_view(label: str, answer: ModelAnswer | None, facts: list[list[str]]) -> dict:
    if answer is None:
        return {"label": label, "missing": True}
    m = answer.metrics
    found_set = set(m.facts_found)
    needles = [alt for g in facts if g and g[0] in found_set for alt in g]
    judge = answer.judge
    return {
        "label": label,
        "missing": False,
        "pieces": highlight(answer.text, needles),
        "text": answer.text,
        "found": m.facts_found,
        "missed": m.facts_missed,
        "recall": METRICS["fact_recall"].format(m.fact_recall),
        "chrf": "—" if m.chrf is None else f"{m.chrf:.3f}",
        "language": m.language,
        "stopped": m.stopped,
        "done_reason": answer.done_reason,
        "seconds": f"{m.total_s:.2f}",
        "tokens": answer.completion_tokens,
        "judge": None
        if judge is None
        else {
            "scores": f"{judge.correctness}/{judge.politeness}/{judge.naturalness}",
            "reasons": judge.reasons,
            "error": judge.error,
        },
    }


def build_view(result: EvalResult, charts: dict[str, bytes]) -> dict[str, Any]:
    """Everything the templates show, as plain values (escaping happens at render time)."""
    labels = [m.label for m in result.models]
    questions = [
        {
            "n": i,
            "source": q.source,
            "question": q.question,
            "reference": q.reference,
            "facts": [g[0] for g in q.facts if g],
            "facts_derived": q.facts_derived,
            "answers": [_answer_view(lb, q.answers.get(lb), q.facts) for lb in labels],
        }
        for i, q in enumerate(result.questions, start=1)
    ]
    from ollama_tune.report.verdict import build_verdict

    return {
        "title": "ollama-tune evaluation report",
        "verdict": build_verdict(result),
        "labels": labels,
        "models": result.models,
        "run_commands": {m.label: ollama_run_command(m.ref) for m in result.models},
        "summary": summary_rows(result),
        "gates": result.gates,
        "passed": result.passed,
        "settings": result.settings,
        "notes": _notes(result),
        "started_at": result.started_at,
        "duration_s": f"{result.duration_s:.1f}",
        "charts": [
            {"name": name, "uri": "data:image/png;base64," + base64.b64encode(png).decode()}
            for name, png in charts.items()
        ],
        "questions": questions,
    }


def _notes(result: EvalResult) -> list[str]:
    """Sentences about what the figures leave out, shown under the report's header."""
    notes = []
    missing = result.settings.get("no_reference_rows") or 0
    if missing:
        notes.append(
            f"{missing} of {result.settings['rows']} questions have facts but no reference "
            "answer: fact recall is measured on them, chrF and length ratio are left out."
        )
    return notes


def render_html(view: dict[str, Any]) -> str:
    """The self-contained HTML page (inline CSS, charts as data URIs), autoescaped."""
    import jinja2

    source = resources.files("ollama_tune.report").joinpath("report.html").read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(source).render(**view)


def _md(text: object) -> str:
    """Escape for a Markdown table cell / inline text: HTML, pipes, and line breaks."""
    s = html.escape(str(text), quote=False).replace("|", "\\|")
    return s.replace("\r", "").replace("\n", "<br>")


def ollama_run_command(ref: str) -> str | None:
    """`ollama run NAME` for a model served by Ollama (`ollama:NAME`), else None."""
    return f"ollama run {ref.removeprefix('ollama:')}" if ref.startswith("ollama:") else None


def _try_it(cmd: str | None) -> str:
    return f" — try it: `{_md(cmd)}`" if cmd else ""


def _md_block(text: str) -> list[str]:
    """A model answer as a Markdown blockquote, HTML-escaped, line breaks kept."""
    lines = html.escape(text, quote=False).replace("\r", "").split("\n") or [""]
    return [f"> {line}".rstrip() for line in lines]


def render_markdown(view: dict[str, Any]) -> str:
    out = [f"# {view['title']}", "", f"**Verdict:** {_md(view['verdict'].summary)}"]
    out += [*(f"- ⚠ {_md(flag)}" for flag in view["verdict"].flags), ""]
    out.append(
        f"{view['started_at']} · {view['settings']['rows']} questions · "
        f"{view['duration_s']} s · temperature {view['settings']['temperature']}, "
        f"seed {view['settings']['seed']}, max tokens {view['settings']['max_tokens']}"
    )
    if view["notes"]:
        out += ["", *(_md(n) for n in view["notes"])]
    out += ["", "## Models", ""]
    runs = view["run_commands"]
    out += [f"- **{_md(m.label)}**: `{_md(m.ref)}`{_try_it(runs[m.label])}" for m in view["models"]]
    out += ["", "## Summary", "", "| metric | " + " | ".join(map(_md, view["labels"])) + " |"]
    out.append("|---|" + "---:|" * len(view["labels"]))
    for row in view["summary"]:
        cells = [f"**{c['text']}**" if c["best"] else c["text"] for c in row["cells"]]
        out.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    if view["gates"]:
        out += ["", "## Gates", "", "| gate | model | value | result |", "|---|---|---:|---|"]
        for g in view["gates"]:
            actual = "—" if g.actual is None else f"{g.actual:.4g}"
            verdict = "pass" if g.passed else "**FAIL**"
            out.append(f"| `{g.gate}` | {_md(g.model)} | {actual} | {verdict} |")
    if view["charts"]:
        out += ["", "## Charts", ""]
        out += [f"![{c['name']}](charts/{c['name']})" for c in view["charts"]]
    out += ["", "## Answers", ""]
    for q in view["questions"]:
        out += _md_question(q)
    return "\n".join(out).rstrip() + "\n"


def _md_question(q: dict[str, Any]) -> list[str]:
    out = [f"### {q['n']}. {_md(q['question'])}", "", f"*{_md(q['source'])}*", ""]
    reference = q["reference"] or "(none: this row has facts only)"
    out += ["**Reference**", "", *_md_block(reference), ""]
    if q["facts"]:
        kind = "derived from the reference" if q["facts_derived"] else "from the test data"
        out += [f"Facts ({kind}): " + ", ".join(f"`{_md(f)}`" for f in q["facts"]), ""]
    for a in q["answers"]:
        if a["missing"]:
            continue
        stop = "stopped" if a["stopped"] else f"cut ({_md(a['done_reason'])})"
        out += [
            f"**{_md(a['label'])}** — recall {a['recall']}, chrF {a['chrf']}, "
            f"{a['language']}, {stop}, {a['seconds']} s",
            "",
            *_md_block(a["text"]),
            "",
        ]
        found = ", ".join(f"✅ {_md(f)}" for f in a["found"])
        missed = ", ".join(f"❌ {_md(f)}" for f in a["missed"])
        if found or missed:
            out += ["Facts: " + ", ".join(x for x in (found, missed) if x), ""]
        if a["judge"]:
            out += [
                f"Judge (correct/polite/natural): {a['judge']['scores']} — "
                f"{_md(a['judge']['reasons'])}",
                "",
            ]
    return out
