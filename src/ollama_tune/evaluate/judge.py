"""Optional LLM judge: an Ollama model scores each answer 1–5 and says why.

Rubric: correctness against the reference, politeness (丁寧語 where the reference is Japanese),
naturalness of the language. The request asks for a JSON schema through Ollama's `format`;
small judges still wrap JSON in prose or code fences, so parsing is forgiving.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ollama_tune.errors import EvaluationError, OllamaError

RUBRIC_KEYS = ("correctness", "politeness", "naturalness")

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{k: {"type": "integer", "minimum": 1, "maximum": 5} for k in RUBRIC_KEYS},
        "reasons": {"type": "string"},
    },
    "required": [*RUBRIC_KEYS, "reasons"],
}

JUDGE_SYSTEM = (
    "You grade answers of a customer-support assistant. Compare the ANSWER with the REFERENCE "
    "answer to the QUESTION and give integer scores from 1 (bad) to 5 (excellent):\n"
    "- correctness: the answer states the same facts, numbers and rules as the reference, "
    "nothing wrong or invented;\n"
    "- politeness: polite register suitable for customers (in Japanese: 丁寧語, です・ます);\n"
    "- naturalness: fluent, natural language in the language of the reference "
    "(an answer in another language scores 1).\n"
    'Reply with JSON only: {"correctness": n, "politeness": n, "naturalness": n, '
    '"reasons": "one or two sentences"}.'
)


@dataclass(frozen=True)
class JudgeScore:
    correctness: int | None
    politeness: int | None
    naturalness: int | None
    reasons: str
    error: str | None = None

    def as_scores(self) -> dict[str, int] | None:
        """The rubric scores that were read, for aggregation; None when nothing was read."""
        out = {k: v for k in RUBRIC_KEYS if (v := getattr(self, k)) is not None}
        return out or None


def _clamp(value: Any) -> int | None:
    try:
        n = round(float(value))
    except (TypeError, ValueError):
        return None
    return min(5, max(1, n))


def parse_judgement(text: str) -> JudgeScore:
    """Read the judge's reply: JSON (possibly fenced or inside prose), else `key: n` pairs."""
    for candidate in _json_candidates(text):
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and any(k in data for k in RUBRIC_KEYS):
            reasons = data.get("reasons", data.get("reason", ""))
            if isinstance(reasons, list):
                reasons = " ".join(map(str, reasons))
            c, p, n = (_clamp(data.get(k)) for k in RUBRIC_KEYS)
            return JudgeScore(c, p, n, str(reasons).strip())
    found = {
        k: _clamp(m.group(1))
        for k in RUBRIC_KEYS
        if (m := re.search(rf"{k}\W{{0,5}}([1-5])", text, re.IGNORECASE))
    }
    if found:
        c, p, n = (found.get(k) for k in RUBRIC_KEYS)
        return JudgeScore(c, p, n, text.strip()[:500])
    return JudgeScore(None, None, None, text.strip()[:500], error="unreadable judge reply")


def _json_candidates(text: str) -> list[str]:
    stripped = text.strip()
    out = [stripped]
    out += re.findall(r"```(?:json)?\s*(.*?)```", stripped, re.DOTALL)
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        out.append(stripped[start : end + 1])
    return out


def judge_messages(question: str, reference: str, answer: str) -> list[dict[str, str]]:
    user = f"QUESTION:\n{question}\n\nREFERENCE:\n{reference}\n\nANSWER:\n{answer}"
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


class OllamaJudge:
    """Scores answers through an Ollama model (`ollama:NAME`) with the official client."""

    def __init__(self, ref: str, *, host: str | None = None, seed: int = 42) -> None:
        if not ref.startswith("ollama:") or len(ref) <= len("ollama:"):
            raise EvaluationError(
                f"judge {ref!r} is not an Ollama model reference",
                hint="name the judge as ollama:MODEL, e.g. --judge ollama:qwen2.5:7b",
            )
        import ollama

        self.model = ref.removeprefix("ollama:")
        self.name = ref
        self.seed = seed
        self._client = ollama.Client(host=host)

    def check(self) -> None:
        """Fail before any answer is generated when the judge model is not there."""
        self._call(lambda: self._client.show(self.model))

    def score(self, question: str, reference: str, answer: str) -> JudgeScore:
        reply = self._call(
            lambda: self._client.chat(
                model=self.model,
                messages=judge_messages(question, reference, answer),
                format=JUDGE_SCHEMA,
                options={"temperature": 0.0, "seed": self.seed},
            )
        )
        return parse_judgement(reply.message.content or "")

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Client errors become OllamaError with what to do (translated once, here)."""
        import httpx
        import ollama

        try:
            return fn()
        except ollama.ResponseError as exc:
            raise OllamaError(
                f"judge {self.name} failed: {exc.error} (HTTP {exc.status_code})",
                hint=f"check the model exists: ollama pull {self.model}",
            ) from None
        except (httpx.HTTPError, ConnectionError) as exc:
            raise OllamaError(
                f"cannot reach Ollama for judge {self.name}: {exc}",
                hint="start Ollama (ollama serve) or set OLLAMA_HOST",
            ) from None
