"""Per-answer metrics and their aggregation per model.

Each answer a model gives to a test row is scored against the row's reference answer and
facts: fact recall, chrF, Japanese share and language match, politeness, structure, whether
it stopped by itself, length ratio and latency. `aggregate` turns a model's answers into the
one number per metric that the summary table, the gates and the report use.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from ollama_tune import japanese

# Units that make a bare number a fact worth checking ("7営業日", "5,000円", "30%").
_UNITS = (
    "営業日|日間|週間|か月|ヶ月|ケ月|カ月|時間|分間|秒間|万円|千円|円|日|時|分|秒|年|月|週|"
    "件|回|個|名|人|歳|点|枚|本|台|泊|階|番|号|%|gb|mb|kb|tb|kg|km|cm|mm|ml|g|m|l"
)
# Runs on normalize_for_match() output: ranges already read "5~7", separators are gone.
_NUMBER_TERM = re.compile(rf"\d+(?:[.:/~]\d+)*(?:{_UNITS})?")
# Shorter questions ("送料は？") are too likely to occur in a genuine answer to be treated as echo.
ECHO_MIN_CHARS = 6
_QUOTED = re.compile(r"[「『]([^「」『』]{1,40})[」』]")


@dataclass(frozen=True)
class FactCheck:
    """Which fact groups an answer contains. `groups[i]` is found when any alternative is."""

    groups: tuple[tuple[str, ...], ...]
    found: tuple[bool, ...]
    derived: bool  # True when the groups came from the reference, not from `facts`

    @property
    def recall(self) -> float | None:
        return None if not self.groups else sum(self.found) / len(self.groups)

    @property
    def found_labels(self) -> list[str]:
        return [g[0] for g, ok in zip(self.groups, self.found, strict=True) if ok]

    @property
    def missed_labels(self) -> list[str]:
        return [g[0] for g, ok in zip(self.groups, self.found, strict=True) if not ok]


def derive_facts(reference: str) -> tuple[tuple[str, ...], ...]:
    """Fact groups taken from a reference answer that has no `facts`: numbers (with their
    unit: 5~7営業日, 5000円, 14:00) and 「quoted」 names, each a one-alternative group."""
    norm = japanese.normalize_for_match(reference)
    terms: list[str] = [m.group(0) for m in _NUMBER_TERM.finditer(norm)]
    terms += [japanese.normalize_for_match(m.group(1)) for m in _QUOTED.finditer(_nfkc(reference))]
    seen: dict[str, None] = {}
    for t in terms:
        if t and t not in seen:
            seen[t] = None
    return tuple((t,) for t in seen)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def contains_fact(answer_norm: str, alternative: str) -> bool:
    """Whether a normalised answer contains one normalised alternative.

    A number only counts whole: "5日" is not found inside "15日", "1000円" not in "10000円".
    """
    alt = japanese.normalize_for_match(alternative)
    if not alt:
        return False
    start = r"(?<!\d)" if alt[0].isdigit() else ""
    end = r"(?!\d)" if alt[-1].isdigit() else ""
    return re.search(start + re.escape(alt) + end, answer_norm) is not None


def check_facts(
    answer: str,
    reference: str,
    facts: Sequence[Sequence[str]] | None = None,
    *,
    question: str = "",
) -> FactCheck:
    """Fact recall of `answer`: the row's `facts` groups, or ones derived from `reference`.

    A copy of the question inside the answer proves nothing, so facts count only outside it
    (small models often open by repeating the question).
    """
    groups = tuple(tuple(g) for g in facts if g) if facts else derive_facts(reference)
    norm = japanese.normalize_for_match(answer)
    asked = japanese.normalize_for_match(question)
    if len(asked) >= ECHO_MIN_CHARS:
        norm = norm.replace(asked, " ")
    found = tuple(any(contains_fact(norm, alt) for alt in g) for g in groups)
    return FactCheck(groups=groups, found=found, derived=not facts)


def chrf(answer: str, reference: str) -> float:
    """chrF (0–1) on characters, via sacrebleu.

    Character n-grams, not words: word-based ROUGE/BLEU score unsegmented Japanese as ~0
    because a whole sentence is one "word".
    """
    from sacrebleu.metrics import CHRF  # light, but keeps `data check` imports minimal

    hyp, ref = _nfkc(answer).strip(), _nfkc(reference).strip()
    if not hyp or not ref:
        return 0.0
    return float(CHRF().sentence_score(hyp, [ref]).score) / 100.0


@dataclass(frozen=True)
class AnswerMetrics:
    """Everything measured about one answer. None means "does not apply to this row"."""

    fact_recall: float | None
    chrf: float | None  # None: the row has facts but no reference answer
    japanese_share: float
    language: str
    language_match: bool | None
    politeness: float | None
    structure: bool | None
    stopped: bool
    length_ratio: float | None
    ttft_s: float | None
    total_s: float
    tokens_per_s: float | None
    completion_tokens: int | None
    facts_found: list[str] = field(default_factory=list)
    facts_missed: list[str] = field(default_factory=list)


def score_answer(
    answer: str,
    reference: str,
    *,
    facts: Sequence[Sequence[str]] | None = None,
    question: str = "",
    done_reason: str = "stop",
    ttft_s: float | None = None,
    total_s: float = 0.0,
    tokens_per_s: float | None = None,
    completion_tokens: int | None = None,
) -> AnswerMetrics:
    """Score one answer against its reference (and facts, when the row has them)."""
    fc = check_facts(answer, reference, facts, question=question)
    has_reference = bool(reference.strip())
    # Without a reference answer the question says which language the answer should be in.
    ref_lang = japanese.detect_language(reference if has_reference else question)
    ans_lang = japanese.detect_language(answer)
    # Politeness applies when the reference is Japanese. A non-Japanese answer there did not
    # use 丁寧語, so it scores 0; a Japanese one with only noun-phrase endings is n/a.
    polite: float | None = None
    if ref_lang == "ja":
        ratio = japanese.politeness(answer).ratio
        if ratio is not None or ans_lang != "ja":
            polite = ratio if ratio is not None else 0.0
    ref_len = len(_nfkc(reference).strip())
    return AnswerMetrics(
        fact_recall=fc.recall,
        chrf=chrf(answer, reference) if has_reference else None,
        japanese_share=japanese.japanese_ratio(answer),
        language=ans_lang,
        language_match=None if ref_lang == "unknown" else ans_lang == ref_lang,
        politeness=polite,
        structure=japanese.has_structure(answer) if japanese.has_structure(reference) else None,
        stopped=done_reason == "stop",
        length_ratio=len(_nfkc(answer).strip()) / ref_len if ref_len else None,
        ttft_s=ttft_s,
        total_s=total_s,
        tokens_per_s=tokens_per_s,
        completion_tokens=completion_tokens,
        facts_found=fc.found_labels,
        facts_missed=fc.missed_labels,
    )


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    better: str  # "higher", "lower" or "one" (closest to 1, for ratios)
    fmt: str  # "pct", "float", "seconds", "rate"

    def best(self, values: Sequence[float | None]) -> float | None:
        """The best of `values` for this metric (None when nothing was measured)."""
        xs = [v for v in values if v is not None]
        if not xs:
            return None
        if self.better == "one":
            return min(xs, key=lambda v: abs(v - 1.0))
        return max(xs) if self.better == "higher" else min(xs)

    def format(self, value: float | None) -> str:
        """Display form for tables: 87.5%, 0.512, 1.23, 45.1; an em dash when not measured."""
        if value is None:
            return "—"
        if self.fmt == "pct":
            return f"{value:.1%}"
        if self.fmt == "rate":
            return f"{value:.1f}"
        return f"{value:.2f}" if self.fmt == "seconds" else f"{value:.3f}"


# The aggregate metrics, in summary-table order; gate names are these keys.
METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("fact_recall", "Fact recall", "higher", "pct"),
        MetricInfo("fact_accuracy", "All facts right", "higher", "pct"),
        MetricInfo("chrf", "chrF", "higher", "float"),
        MetricInfo("japanese_share", "Japanese share", "higher", "pct"),
        MetricInfo("language_match", "Language match", "higher", "pct"),
        MetricInfo("politeness", "Politeness", "higher", "pct"),
        MetricInfo("structure", "Structure", "higher", "pct"),
        MetricInfo("stop_rate", "Stopped by itself", "higher", "pct"),
        MetricInfo("length_ratio", "Length ratio", "one", "float"),
        MetricInfo("p50_latency_s", "Latency p50 (s)", "lower", "seconds"),
        MetricInfo("p95_latency_s", "Latency p95 (s)", "lower", "seconds"),
        MetricInfo("p50_ttft_s", "TTFT p50 (s)", "lower", "seconds"),
        MetricInfo("p95_ttft_s", "TTFT p95 (s)", "lower", "seconds"),
        MetricInfo("tokens_per_s", "Tokens/s", "higher", "rate"),
        MetricInfo("judge_correctness", "Judge: correctness", "higher", "float"),
        MetricInfo("judge_politeness", "Judge: politeness", "higher", "float"),
        MetricInfo("judge_naturalness", "Judge: naturalness", "higher", "float"),
        MetricInfo("judge_score", "Judge: mean", "higher", "float"),
    )
}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0–100) of `values`; None when empty."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _mean(values: Sequence[float | bool | None]) -> float | None:
    xs = [float(v) for v in values if v is not None]
    return statistics.fmean(xs) if xs else None


def aggregate(
    answers: Sequence[AnswerMetrics],
    judge_scores: Sequence[dict[str, int] | None] = (),
) -> dict[str, float | None]:
    """One value per metric in `METRICS` for a model's answers (None = not measured)."""
    recalls = [a.fact_recall for a in answers if a.fact_recall is not None]
    ratios = [a.length_ratio for a in answers if a.length_ratio is not None]
    totals = [a.total_s for a in answers]
    ttfts = [a.ttft_s for a in answers if a.ttft_s is not None]
    out: dict[str, float | None] = {
        "fact_recall": _mean(recalls),
        "fact_accuracy": _mean([r >= 1.0 for r in recalls]),
        "chrf": _mean([a.chrf for a in answers]),
        "japanese_share": _mean([a.japanese_share for a in answers]),
        "language_match": _mean([a.language_match for a in answers]),
        "politeness": _mean([a.politeness for a in answers]),
        "structure": _mean([a.structure for a in answers]),
        "stop_rate": _mean([a.stopped for a in answers]),
        # Median: one runaway answer should not dominate a length comparison.
        "length_ratio": statistics.median(ratios) if ratios else None,
        "p50_latency_s": percentile(totals, 50),
        "p95_latency_s": percentile(totals, 95),
        "p50_ttft_s": percentile(ttfts, 50),
        "p95_ttft_s": percentile(ttfts, 95),
        "tokens_per_s": _mean([a.tokens_per_s for a in answers]),
    }
    judged = [j for j in judge_scores if j]
    for key in ("correctness", "politeness", "naturalness"):
        out[f"judge_{key}"] = _mean([j[key] for j in judged if key in j])
    parts = [out[f"judge_{k}"] for k in ("correctness", "politeness", "naturalness")]
    out["judge_score"] = _mean(parts)
    return out
