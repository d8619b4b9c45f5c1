"""Rewordings from a teacher model: Ollama (`ollama:NAME`, JSON schema through `format`) or
anything `runtime.open_model` runs (a bundle, Modelfile or `.gguf`, prompted for the JSON).

The reply is validated with a pydantic model; prose around the JSON, code fences and missing
or non-string items are tolerated, anything else counts as no rewordings for that row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from ollama_tune.errors import OllamaError


class Rewordings(BaseModel):
    rewordings: list[str]


SCHEMA: dict[str, Any] = Rewordings.model_json_schema()

_SYSTEM = {
    "ja": (
        "あなたはカスタマーサポートの質問を言い換える係です。意味を変えずに、お客様が実際に"
        "書きそうな別の言い方を作ってください。数字・金額・日数・商品名・型番はそのまま残し、"
        "新しい情報は加えないでください。言い換えは日本語で書いてください。"
    ),
    "en": (
        "You reword customer-support questions. Write other ways a customer would ask the "
        "same thing. Keep every number, amount, duration, product name and code exactly; "
        "add no new information. Write the rewordings in English."
    ),
}


def teacher_messages(question: str, n: int, language: str) -> list[dict[str, str]]:
    lang = "ja" if language == "ja" else "en"
    if lang == "ja":
        ask = (
            f'次の質問の言い換えを{n}個、JSON {{"rewordings": ["..."]}} の形で'
            f"出力してください。\n\n質問: {question}"
        )
    else:
        ask = (
            f'Give {n} rewordings of this question as JSON {{"rewordings": ["..."]}}.\n\n'
            f"Question: {question}"
        )
    return [{"role": "system", "content": _SYSTEM[lang]}, {"role": "user", "content": ask}]


def parse_rewordings(text: str) -> list[str]:
    """The rewordings in a teacher reply; [] when it holds none that can be read."""
    stripped = text.strip()
    candidates = [stripped, *re.findall(r"```(?:json)?\s*(.*?)```", stripped, re.DOTALL)]
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, list):
            data = {"rewordings": data}
        if isinstance(data, dict) and isinstance(data.get("rewordings"), list):
            items = [s.strip() for s in data["rewordings"] if isinstance(s, str) and s.strip()]
            try:
                return Rewordings(rewordings=items).rewordings
            except ValidationError:
                continue
    return []


TeacherFn = Callable[[str, int, str], str]


def open_teacher(ref: str, *, seed: int = 42) -> tuple[TeacherFn, Callable[[], None]]:
    """A function (question, n, language) → raw reply text, and how to close the model."""
    if ref.startswith("ollama:"):
        return _ollama_teacher(ref.removeprefix("ollama:"), seed), lambda: None
    from ollama_tune.runtime import GenerateOptions, open_model

    model = open_model(ref)
    options = GenerateOptions(temperature=0.7, seed=seed, max_tokens=512)

    def ask(question: str, n: int, language: str) -> str:
        return model.generate(teacher_messages(question, n, language), options).text

    return ask, model.close


def _ollama_teacher(name: str, seed: int) -> TeacherFn:
    import httpx
    import ollama

    client = ollama.Client()

    def ask(question: str, n: int, language: str) -> str:
        try:
            reply = client.chat(
                model=name,
                messages=teacher_messages(question, n, language),
                format=SCHEMA,
                options={"temperature": 0.7, "seed": seed},
            )
        except ollama.ResponseError as exc:
            raise OllamaError(
                f"teacher ollama:{name} failed: {exc.error} (HTTP {exc.status_code})",
                hint=f"check the model exists: ollama pull {name}",
            ) from None
        except (httpx.HTTPError, ConnectionError) as exc:
            raise OllamaError(
                f"cannot reach Ollama for teacher ollama:{name}: {exc}",
                hint="start Ollama (ollama serve) or set OLLAMA_HOST",
            ) from None
        return reply.message.content or ""

    return ask
