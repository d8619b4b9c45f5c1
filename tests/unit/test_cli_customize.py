"""`ollama-tune customize` through the real CLI entry point, against the Ollama fake."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from _cli import run_cli
from ollama_tune.modelfile import Modelfile

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "examples" / "customer-support" / "train.jsonl"


run = run_cli


def _write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = [
        json.dumps({"instruction": q, "input": "", "output": a}, ensure_ascii=False)
        for q, a in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TECH = [
    ("Wi-Fiにつながりません", "ルーターを再起動してください。"),
    ("パスワードを忘れました", "ログイン画面の「パスワードを忘れた方」から再設定できます。"),
    ("アプリが落ちます", "最新版に更新してください。"),
    ("画面が真っ暗です", "電源ボタンを10秒長押ししてください。"),
    ("Bluetoothが見つからない", "設定からBluetoothをオンにしてください。"),
]
SALES = [
    ("法人割引はありますか", "10台以上で5%割引です。"),
    ("見積もりが欲しい", "見積フォームからご依頼ください。"),
    ("請求書払いはできますか", "法人様は請求書払いに対応しています。"),
    ("納期はどれくらい", "在庫品は3営業日で出荷します。"),
    ("デモは可能ですか", "オンラインデモを承っています。"),
]


def test_customize_writes_modelfile_creates_and_tests(fake_ollama, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("llama3.2:1b")
    out_file = tmp_path / "Modelfile"
    code, out, err = run(
        capsys, "customize", "--data", str(SUPPORT), "--base-model", "llama3.2:1b",
        "--model-name", "my-support-bot", "--shots", "4", "--temperature", "0.3",
        "--top_p", "0.8", "--output", str(out_file), "--test",
    )  # fmt: skip
    assert code == 0, err
    mf = Modelfile.read(out_file)
    assert mf.from_ == "llama3.2:1b" and len(mf.messages) == 8
    assert ("temperature", "0.3") in mf.parameters and ("top_p", "0.8") in mf.parameters
    body = fake_ollama.last("/api/create").json
    assert body["model"] == "my-support-bot" and body["from"] == "llama3.2:1b"
    assert body["parameters"]["top_p"] == 0.8
    assert body["messages"] == [{"role": r, "content": c} for r, c in mf.messages]
    assert body["system"] == mf.system
    # --test: 3 held-out rows asked through /api/chat, answers shown with tokens/s and stop.
    chats = fake_ollama.requests_to("/api/chat")
    assert len(chats) == 3
    for req in chats:
        question = req.json["messages"][-1]["content"]
        assert f"echo: {question}"[:20] in out
        assert all(question != c for _, c in mf.messages)  # held out, never a shot
    assert "tokens/s" in out and "50.0" in out and "yes" in out


def test_customize_unreachable_ollama_exits_3_after_writing(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out_file = tmp_path / "my dir" / "Modelfile"
    code, _out, err = run(
        capsys, "customize", "--data", str(SUPPORT), "--base-model", "llama3.2:1b",
        "--model-name", "bot", "--output", str(out_file),
    )  # fmt: skip
    assert code == 3
    assert out_file.is_file() and Modelfile.read(out_file).from_ == "llama3.2:1b"
    flat = " ".join(err.split())
    assert "http://127.0.0.1:9" in flat and "ollama serve" in flat
    assert " ".join(f"ollama create bot -f {shlex.quote(str(out_file.resolve()))}".split()) in flat


def test_no_create_and_questions_file(fake_ollama, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out_file = tmp_path / "Modelfile"
    code, out, _ = run(
        capsys, "customize", "--data", str(SUPPORT), "--base-model", "llama3.2:1b",
        "--model-name", "bot", "--output", str(out_file), "--no-create",
    )  # fmt: skip
    assert code == 0 and out_file.is_file()
    assert "ollama create bot -f" in " ".join(out.split())
    assert fake_ollama.requests == []


def test_variants_from_several_data_files_side_by_side(fake_ollama, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fake_ollama.add_model("qwen2.5:0.5b")
    questions = tmp_path / "q.txt"
    questions.write_text("営業時間は？\n\n支払い方法は？\n", encoding="utf-8")
    for name, rows in (("tech-support", TECH), ("sales", SALES)):
        data = _write_jsonl(tmp_path / f"{name}.jsonl", rows)
        code, _out, err = run(
            capsys, "customize", "-d", str(data), "-b", "qwen2.5:0.5b", "-n", name,
            "--system", f"あなたは{name}担当です。", "-k", "2",
            "-o", str(tmp_path / name / "Modelfile"), "--test", "--questions", str(questions),
        )  # fmt: skip
        assert code == 0, err
    assert {"tech-support:latest", "sales:latest"} <= set(fake_ollama.models)
    tech = fake_ollama.models["tech-support:latest"]
    sales = fake_ollama.models["sales:latest"]
    assert (
        tech.system == "あなたはtech-support担当です。"
        and sales.system == "あなたはsales担当です。"
    )
    assert {m["content"] for m in tech.messages} <= {t for row in TECH for t in row}
    assert {m["content"] for m in sales.messages} <= {t for row in SALES for t in row}
    asked = [r.json["messages"][-1]["content"] for r in fake_ollama.requests_to("/api/chat")]
    assert asked == ["営業時間は？", "支払い方法は？"] * 2


def test_system_from_file_and_pull_missing_base(fake_ollama, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    system = tmp_path / "system.txt"
    system.write_text("複数行の\nシステムプロンプト\n", encoding="utf-8")
    data = _write_jsonl(tmp_path / "d.jsonl", TECH)
    code, _out, err = run(
        capsys, "customize", "-d", str(data), "-b", "gemma3:1b", "-n", "bot",
        "--system", f"@{system}", "--pull", "-o", str(tmp_path / "Modelfile"),
    )  # fmt: skip
    assert code == 0, err
    assert fake_ollama.last("/api/pull").json == {
        "model": "gemma3:1b",
        "insecure": False,
        "stream": True,
    }
    assert fake_ollama.last("/api/create").json["system"] == "複数行の\nシステムプロンプト\n"


def test_num_ctx_that_cannot_fit_is_a_usage_error(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = run(
        capsys, "customize", "-d", str(SUPPORT), "-b", "m", "-n", "bot", "--num-ctx", "256",
        "-o", str(tmp_path / "Modelfile"), "--no-create",
    )  # fmt: skip
    assert code == 2
    assert "does not fit --num-ctx 256" in " ".join(err.split())
    assert not (tmp_path / "Modelfile").exists()


def test_knowledge_mode_puts_the_faq_in_system(fake_ollama, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = _write_jsonl(tmp_path / "tech.jsonl", TECH)
    out_file = tmp_path / "Modelfile"
    code, _out, err = run(
        capsys, "customize", "-d", str(data), "-b", "m", "-n", "kb", "--knowledge",
        "-k", "1", "-o", str(out_file), "--no-create", "--test-questions", "3",
    )  # fmt: skip
    assert code == 0, err
    system = Modelfile.read(out_file).system or ""
    in_system = [q for q, _ in TECH if f"Q: {q}" in system]
    assert len(in_system) == len(TECH) - 3  # every row but the 3 held out for --test
    assert all(f"A: {a}" in system for q, a in TECH if q in in_system)


def test_a_row_longer_than_the_context_is_refused_with_the_numbers(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = [*TECH, ("返品について" * 40_000, "はい。"), *SALES]  # line 6: 240,000 characters
    data = _write_jsonl(tmp_path / "faq.jsonl", rows)
    code, _, err = run(
        capsys, "customize", "--data", str(data), "--base-model", "llama3.2:1b",
        "--model-name", "bot", "--output", str(tmp_path / "Modelfile"), "--no-create",
    )  # fmt: skip
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in err
    assert f"{data}:6: this row is 240,003 characters (about 408,006 tokens)" in text
    assert "longer than the model's context (--max-ctx 32,768 tokens)" in text
    assert not (tmp_path / "Modelfile").exists()
    code, _, err = run(
        capsys, "customize", "--data", str(data), "--base-model", "llama3.2:1b",
        "--model-name", "bot", "--output", str(tmp_path / "Modelfile"), "--no-create",
        "--num-ctx", "4096",
    )  # fmt: skip
    text = " ".join(err.split())
    assert code == 2 and f"does not fit --num-ctx 4096: {data}:6 alone is 240,003" in text
