"""The report's first lines: the verdict in words, and what to worry about.

"tuned: 48% of facts vs 0% for base; stops by itself 100%; ships q4_k_m+q8emb, 2 points under
f16" — then flags: memorised-not-generalised (fact recall on training questions far above the
reworded test questions), repetition loops (an answer repeating one phrase), and language
drift (answers not in the question's language).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune import japanese
from ollama_tune.evaluate.compare import EvalResult

# Memorised: training recall this far above test recall (absolute) is not generalisation.
MEMORISED_GAP = 0.25
# A loop: some 12-character (or 4-word) span occurs this often in one answer.
LOOP_REPEATS = 3
LOOP_CHARS = 12
# Drift: more than this share of answers in a language other than the question's.
DRIFT_SHARE = 0.05


@dataclass
class Verdict:
    summary: str
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "flags": list(self.flags)}


def is_looping(text: str) -> bool:
    """Whether `text` repeats one phrase: a 12-character span (Japanese, no spaces) or a
    4-word span occurring 3+ times."""
    flat = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()
    words = flat.split(" ")
    spans: Counter[str] = Counter(" ".join(words[i : i + 4]) for i in range(len(words) - 3))
    if len(words) < 12:  # few spaces: count character spans instead
        spans = Counter(flat[i : i + LOOP_CHARS] for i in range(len(flat) - LOOP_CHARS + 1))
    # Non-overlapping is what a reader sees; "ああああ…" counts as one long repeat too.
    return any(n >= LOOP_REPEATS and flat.count(s) >= LOOP_REPEATS for s, n in spans.items())


def build_verdict(result: EvalResult) -> Verdict:
    """The verdict for the last model (the candidate) against the first (the baseline)."""
    if not result.models:
        return Verdict("no models were evaluated")
    cand, base = result.models[-1], result.models[0]
    parts = [_recall_part(cand.label, cand.metrics, base.label, base.metrics, len(result.models))]
    stop = cand.metrics.get("stop_rate")
    if stop is not None:
        parts.append(f"stops by itself {stop:.0%}")
    if shipped := _shipped(cand.ref):
        parts.append(shipped)
    flags = [*_memorised(result), *_loops(result), *_drift(result)]
    return Verdict("; ".join(p for p in parts if p), flags)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _recall_part(
    label: str, metrics: dict[str, Any], base: str, base_metrics: dict[str, Any], n: int
) -> str:
    recall = metrics.get("fact_recall")
    if n == 1:
        return f"{label}: {_pct(recall)} of facts"
    return f"{label}: {_pct(recall)} of facts vs {_pct(base_metrics.get('fact_recall'))} for {base}"


def _shipped(ref: str) -> str | None:
    """What the bundle behind `ref` ships and what that quantization cost, from its run.json."""
    path = Path(ref)
    run_json = (path if path.is_dir() else path.parent) / "run.json"
    try:
        export = json.loads(run_json.read_text("utf-8")).get("export", {})
    except (OSError, ValueError, AttributeError):
        return None
    shipped = export.get("shipped") if isinstance(export, dict) else None
    if not isinstance(shipped, dict) or not isinstance(shipped.get("quant"), str):
        return None
    quant, scores, ref_q = shipped["quant"], shipped.get("scores") or {}, shipped.get("reference")
    ref_v, v = scores.get(ref_q), scores.get(quant)
    if isinstance(ref_v, (int, float)) and isinstance(v, (int, float)) and quant != ref_q:
        return f"{quant} loses {max(0.0, ref_v - v) * 100:.0f} points against {ref_q}"
    return f"ships {quant}"


def _memorised(result: EvalResult) -> list[str]:
    out = []
    for label, check in (result.train_check or {}).items():
        train, test = check.get("fact_recall"), _metric(result, label, "fact_recall")
        if train is None or test is None or train - test < MEMORISED_GAP:
            continue
        out.append(
            f"memorised, not generalised: {label} recalls {train:.0%} of facts on "
            f"{check.get('rows')} training questions but {test:.0%} on the reworded test "
            "questions — add rewordings (data augment) or more varied questions"
        )
    return out


def _metric(result: EvalResult, label: str, name: str) -> float | None:
    found = [m.metrics.get(name) for m in result.models if m.label == label]
    return found[0] if found else None


def _loops(result: EvalResult) -> list[str]:
    out = []
    for m in result.models:
        hits = [q for q in result.questions if (a := q.answers.get(m.label)) and is_looping(a.text)]
        if hits:
            out.append(
                f"repetition loops: {m.label} repeats itself in {len(hits)} of "
                f"{len(result.questions)} answers (first: {hits[0].source})"
            )
    return out


def _drift(result: EvalResult) -> list[str]:
    out = []
    for m in result.models:
        asked, off = 0, Counter[str]()
        for q in result.questions:
            lang, a = japanese.detect_language(q.question), q.answers.get(m.label)
            if a is None or lang in ("unknown", "other") or not a.text.strip():
                continue
            asked += 1
            if a.metrics.language != lang:
                off[f"{a.metrics.language} instead of {lang}"] += 1
        if asked and sum(off.values()) / asked > DRIFT_SHARE:
            kinds = ", ".join(f"{k} ×{n}" for k, n in off.most_common())
            out.append(
                f"language drift: {m.label} answers {sum(off.values())} of {asked} questions "
                f"in another language than asked ({kinds})"
            )
    return out
