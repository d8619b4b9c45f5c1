"""compare_models orchestration, the quantization guard and the judge.

Orchestration (concurrency, aggregation, gates, guard) runs with a small in-test model that
honours the runtime's Generator protocol; the judge and `ollama:` models go through the real
runtime/client against the documented-API fake (`fake_ollama`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ollama_tune.data.model import Example, Message, SourceRef
from ollama_tune.errors import EvaluationError, OllamaError
from ollama_tune.evaluate import EvalConfig, compare_models, guard_quantization, parse_judgement
from ollama_tune.evaluate.compare import _training_run
from ollama_tune.evaluate.guard import next_larger_quant

ROWS = [
    ("返品はできますか？", "はい、商品到着後30日以内なら返品できます。", [["30日"]]),
    ("返金はいつですか？", "返金は５～７営業日で処理いたします。", [["5-7営業日"]]),
    ("送料は？", "5,000円以上のご注文は送料無料です。", None),
]


def make_examples() -> list[Example]:
    return [
        Example(
            (Message("user", q), Message("assistant", a)),
            SourceRef("test.jsonl", i),
            tuple(tuple(g) for g in facts) if facts else None,
        )
        for i, (q, a, facts) in enumerate(ROWS, start=1)
    ]


@dataclass
class Gen:
    text: str
    done_reason: str = "stop"
    prompt_tokens: int = 12
    completion_tokens: int = 30
    ttft_s: float = 0.05
    total_s: float = 0.4
    tokens_per_s: float = 75.0


class ScriptedModel:
    """Answers from a dict keyed by question; records concurrency and options."""

    def __init__(self, name: str, answers: dict[str, str], delay: float = 0.0) -> None:
        self.name = name
        self.answers = answers
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self.options: list[object] = []
        self.closed = False
        self._lock = threading.Lock()

    def generate(self, messages: list[dict[str, str]], options: object) -> Gen:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
        self.options.append(options)
        text = self.answers.get(messages[-1]["content"], "I don't know.")
        return Gen(text, done_reason="stop" if text != "I don't know." else "length")

    def close(self) -> None:
        self.closed = True


GOOD = {q: a for q, a, _ in ROWS}


def test_compare_scores_every_model_on_every_row_in_order() -> None:
    opened: dict[str, ScriptedModel] = {}

    def open_model(ref: str) -> ScriptedModel:
        opened[ref] = ScriptedModel(ref, GOOD if ref == "ollama:good" else {}, delay=0.02)
        return opened[ref]

    config = EvalConfig(
        models={"base": "bad.gguf", "tuned": "ollama:good"},
        examples=make_examples(),
        gates=["fact_recall>=0.9", "base.stop_rate>=0.5"],
        concurrency=3,
        max_tokens=99,
    )
    seen: list[tuple[str, float, float | None]] = []
    result = compare_models(config, lambda d, c, t: seen.append((d, c, t)), open_model=open_model)

    assert [m.label for m in result.models] == ["base", "tuned"]
    tuned, base = result.summaries()["tuned"], result.summaries()["base"]
    assert tuned["fact_recall"] == 1.0 and base["fact_recall"] == 0.0
    assert tuned["stop_rate"] == 1.0 and base["stop_rate"] == 0.0
    assert tuned["language_match"] == 1.0 and base["language_match"] == 0.0
    assert [q.source for q in result.questions] == ["test.jsonl:1", "test.jsonl:2", "test.jsonl:3"]
    assert result.questions[2].facts == [["5000円"]] and result.questions[2].facts_derived
    assert all(set(q.answers) == {"base", "tuned"} for q in result.questions)
    # Concurrency ran server requests side by side, an in-process model one at a time.
    assert opened["ollama:good"].max_active > 1
    assert opened["bad.gguf"].max_active == 1
    assert all(m.closed for m in opened.values())
    opts = opened["ollama:good"].options[0]
    assert (opts.temperature, opts.seed, opts.max_tokens) == (0.0, 42, 99)
    assert [(g.model, g.passed) for g in result.gates] == [("tuned", True), ("base", False)]
    assert not result.passed
    assert ("tuned: answering", 3, 3) in seen
    json.dumps(result.to_dict(), ensure_ascii=False)  # serialisable for report.json


def test_an_answer_that_only_repeats_the_question_gets_no_fact_credit() -> None:
    question = "30日以内なら返品できますか？"
    row = Example(
        (Message("user", question), Message("assistant", ROWS[0][1])),
        SourceRef("t.jsonl", 1),
        (("30日",),),
    )
    answers = {"echo.gguf": question, "good.gguf": "はい、30日以内なら承ります。"}
    config = EvalConfig(models={"echo": "echo.gguf", "good": "good.gguf"}, examples=[row])
    result = compare_models(
        config, open_model=lambda ref: ScriptedModel(ref, {question: answers[ref]})
    )
    assert result.summaries()["echo"]["fact_recall"] == 0.0
    assert result.summaries()["good"]["fact_recall"] == 1.0


def test_bad_config_reports_every_problem_before_loading_models() -> None:
    def never(ref: str) -> ScriptedModel:
        raise AssertionError("must not open models")

    # Field values fail as the config is built (EvalSettings' limits), all named at once.
    with pytest.raises(EvaluationError) as err:
        config = EvalConfig(models={"bad label": "x"}, examples=make_examples(), concurrency=0)
        compare_models(config, open_model=never)
    assert "bad label" in err.value.message and "--concurrency" in err.value.message
    with pytest.raises(EvaluationError, match="unknown metric"):
        compare_models(
            EvalConfig(models={"a": "x"}, examples=make_examples(), gates=["recall>=1"]),
            open_model=never,
        )


def test_runtime_crash_names_the_row_and_model() -> None:
    class Broken(ScriptedModel):
        def generate(self, messages: list[dict[str, str]], options: object) -> Gen:
            raise RuntimeError("llama_decode returned -1")

    with pytest.raises(EvaluationError, match=r"test.jsonl:1: generation with broken failed"):
        compare_models(
            EvalConfig(models={"a": "broken"}, examples=make_examples()[:1]),
            open_model=lambda ref: Broken(ref, {}),
        )


def test_guard_warns_when_a_quantization_loses_fact_recall(tmp_path: Path) -> None:
    answers = {
        "f16": GOOD,
        "q8_0": GOOD,
        "q4_k_m": {ROWS[0][0]: ROWS[0][1]},  # forgets two of three facts
    }
    paths = {q: tmp_path / f"model-{q}.gguf" for q in answers}

    def open_model(ref: str) -> ScriptedModel:
        quant = Path(ref).stem.removeprefix("model-")
        return ScriptedModel(ref, answers[quant])

    guard = guard_quantization(paths, make_examples(), threshold=0.05, open_model=open_model)
    assert guard.metric == "fact_recall"
    assert guard.scores == {"f16": 1.0, "q8_0": 1.0, "q4_k_m": pytest.approx(1 / 3)}
    assert not guard.ok
    [warning] = guard.warnings
    assert warning.quant == "q4_k_m" and warning.suggestion == "q5_k_m"
    assert "66.7%" in warning.message and "try q5_k_m" in warning.message


def test_guard_needs_the_reference() -> None:
    with pytest.raises(EvaluationError, match="'f16'"):
        guard_quantization({"q4_k_m": Path("x.gguf")}, make_examples())


@pytest.mark.parametrize(
    ("quant", "nxt"),
    [
        ("q4_k_m", "q5_k_m"),
        ("Q4_0", "q5_k_m"),
        ("q5_k_m", "q6_k"),
        ("q6_k", "q8_0"),
        ("q8_0", "f16"),
        ("q3_k_s", "q4_k_m"),
        ("iq2_xs", "q3_k_m"),
        ("f16", None),
    ],
)
def test_next_larger_quant(quant: str, nxt: str | None) -> None:
    assert next_larger_quant(quant) == nxt


def test_training_run_is_found_from_a_bundle(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "x"
    bundle = run / "bundle"
    bundle.mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    (bundle / "Modelfile").write_text("FROM ./model.gguf\n")
    assert _training_run(str(bundle)) == str(run.resolve())
    assert _training_run(str(bundle / "Modelfile")) == str(run.resolve())
    # run.json pointing elsewhere
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"train": {"run_dir": str(run)}}))
    assert _training_run(str(other)) == str(run.resolve())
    assert _training_run("ollama:llama3.2:1b") is None


@pytest.mark.parametrize(
    "reply",
    [
        '{"correctness": 4, "politeness": 5, "naturalness": 3, "reasons": "ok"}',
        'Sure!\n```json\n{"correctness": 4, "politeness": 5, "naturalness": 3, "reasons": "ok"}'
        "\n```",
        'Here: {"correctness": "4", "politeness": 5.2, "naturalness": 3, "reasons": "ok"} done',
        "correctness: 4\npoliteness: 5\nnaturalness = 3\nok",
    ],
)
def test_parse_judgement_is_forgiving(reply: str) -> None:
    j = parse_judgement(reply)
    assert (j.correctness, j.politeness, j.naturalness) == (4, 5, 3)
    assert "ok" in j.reasons and j.error is None


def test_parse_judgement_clamps_and_reports_garbage() -> None:
    assert parse_judgement('{"correctness": 9, "politeness": 0, "naturalness": 2}').correctness == 5
    j = parse_judgement("I cannot grade this.")
    assert j.error and j.as_scores() is None


def test_judge_through_ollama_sends_the_schema_and_keeps_reasons(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("judge:7b")
    fake_ollama.add_model("bot")
    fake_ollama.script("bot", {q: a for q, a, _ in ROWS})

    def grade(messages: list[dict[str, str]]) -> str:
        good = "30日以内" in messages[-1]["content"].split("ANSWER:")[-1]
        score = 5 if good else 2
        return json.dumps(
            {"correctness": score, "politeness": 4, "naturalness": 5, "reasons": "理由: 規定どおり"}
        )

    fake_ollama.script("judge:7b", grade)
    config = EvalConfig(
        models={"bot": "ollama:bot"}, examples=make_examples(), judge="ollama:judge:7b"
    )
    result = compare_models(config)
    chat = [r.json for r in fake_ollama.requests_to("/api/chat") if r.json["model"] == "judge:7b"]
    assert len(chat) == 3
    assert chat[0]["format"]["required"] == ["correctness", "politeness", "naturalness", "reasons"]
    assert chat[0]["options"]["temperature"] == 0.0
    first = result.questions[0].answers["bot"].judge
    assert first is not None and first.correctness == 5 and first.reasons == "理由: 規定どおり"
    assert result.summaries()["bot"]["judge_correctness"] == pytest.approx((5 + 2 + 2) / 3)
    assert result.summaries()["bot"]["fact_recall"] == 1.0


def test_judge_model_missing_fails_before_generating(fake_ollama) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("bot")
    config = EvalConfig(
        models={"bot": "ollama:bot"}, examples=make_examples()[:1], judge="ollama:nope"
    )
    with pytest.raises(OllamaError, match="nope"):
        compare_models(config)
    assert fake_ollama.requests_to("/api/chat") == []


def test_gate_on_an_unknown_model_fails_before_generating() -> None:
    def never(ref: str) -> ScriptedModel:
        raise AssertionError("must not open models")

    config = EvalConfig(models={"a": "x"}, examples=make_examples(), gates=["b.chrf>=0.1"])
    with pytest.raises(EvaluationError, match="'b'"):
        compare_models(config, open_model=never)


def test_judge_must_be_an_ollama_reference() -> None:
    config = EvalConfig(models={"a": "x"}, examples=make_examples()[:1], judge="judge.gguf")
    with pytest.raises(EvaluationError, match="ollama:MODEL"):
        compare_models(config, open_model=lambda ref: ScriptedModel(ref, GOOD))
