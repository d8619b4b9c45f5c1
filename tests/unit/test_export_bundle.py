"""`ollama-tune export` end to end on the tiny model: bundle files, Modelfile, guard, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _export_fixtures import make_run_dir
from typer.testing import CliRunner

from ollama_tune.cli import app
from ollama_tune.modelfile import Modelfile
from ollama_tune.templates import go_available


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    run_dir = make_run_dir(tiny_model_dir, tmp_path_factory.mktemp("run"))
    result = CliRunner().invoke(
        app, ["export", str(run_dir), "--quant", "q8_0,f16", "--name", "tiny-bot", "--json"]
    )
    return run_dir, result


def test_export_cli_writes_the_bundle(exported):  # type: ignore[no-untyped-def]
    run_dir, result = exported
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    bundle = run_dir / "bundle"
    assert Path(data["bundle"]) == bundle
    assert sorted(p.name for p in bundle.iterdir()) == [
        "Modelfile",
        "README.md",
        "model-f16.gguf",
        "model-q8_0.gguf",
        "run.json",
    ]
    assert data["sizes"]["q8_0"] == (bundle / "model-q8_0.gguf").stat().st_size
    assert (run_dir / "merged" / "model.safetensors").is_file()
    assert data["parity_checked"] is go_available()
    assert data["template_family"] == "chatml"


def test_bundle_modelfile_matches_training_and_lints_clean(exported):  # type: ignore[no-untyped-def]
    run_dir, _ = exported
    bundle = run_dir / "bundle"
    mf = Modelfile.read(bundle / "Modelfile")
    assert mf.from_ == "./model-q8_0.gguf"
    assert ("stop", "<|im_end|>") in mf.parameters
    assert dict(mf.parameters)["num_ctx"] == "512"  # capped by the model's 512 positions
    assert mf.system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert mf.template and ".Messages" in mf.template
    assert [i for i in mf.lint(base_dir=bundle) if i.severity == "error"] == []


def test_bundle_run_json_records_the_export(exported):  # type: ignore[no-untyped-def]
    run_dir, _ = exported
    run = json.loads((run_dir / "bundle" / "run.json").read_text(encoding="utf-8"))
    from ollama_tune._util import sha256_file

    gguf = run_dir / "bundle" / "model-q8_0.gguf"
    assert run["export"]["sha256"]["q8_0"] == sha256_file(gguf)
    assert run["export"]["quants"] == ["q8_0", "f16"]
    assert {"merge_s", "convert_f16_s", "quantize_q8_0_s"} <= set(run["export"]["timings_s"])
    assert run["base_model"]["hf_dir"]  # the training record is carried over
    readme = (run_dir / "bundle" / "README.md").read_text(encoding="utf-8")
    assert "ollama create tiny-bot -f Modelfile" in readme
    assert "ollama-tune create . --name tiny-bot" in readme


def test_bundle_chats_embedded_through_its_modelfile(exported):  # type: ignore[no-untyped-def]
    run_dir, _ = exported
    result = CliRunner().invoke(
        app, ["chat", str(run_dir / "bundle"), "--once", "返品は？", "--max-tokens", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["completion_tokens"] == 4


def test_export_runs_the_quantization_guard_on_the_test_split(  # type: ignore[no-untyped-def]
    exported, tmp_path: Path
):
    run_dir, _ = exported
    run2 = tmp_path / "run"
    shutil.copytree(run_dir, run2, ignore=shutil.ignore_patterns("bundle", "merged"))
    (run2 / "data").mkdir()
    rows = [{"question": "返品できますか？", "answer": "30日以内なら可能です。"}]
    (run2 / "data" / "test.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["export", str(run2), "--quant", "q8_0", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # The guard needs the f16 reference, so it stays in the bundle next to q8_0.
    assert set(data["ggufs"]) == {"q8_0", "f16"}
    assert set(data["guard"]["scores"]) == {"f16", "q8_0"}


def test_export_rejects_an_unknown_quantization_before_work(exported, tmp_path: Path):  # type: ignore[no-untyped-def]
    from ollama_tune.cli import main

    run_dir, _ = exported
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run_dir), "--quant", "q3_x", "--out", str(tmp_path / "b")])
    assert exit_info.value.code == 1
    assert not (tmp_path / "b").exists()


def test_bundle_registers_in_ollama_with_create(exported, fake_ollama):  # type: ignore[no-untyped-def]
    run_dir, _ = exported
    bundle = run_dir / "bundle"
    result = CliRunner().invoke(app, ["create", str(bundle), "--name", "tiny-bot"])
    assert result.exit_code == 0, result.output
    body = fake_ollama.last("/api/create").json
    from ollama_tune._util import sha256_file

    assert body["files"] == {"model-q8_0.gguf": f"sha256:{sha256_file(bundle / 'model-q8_0.gguf')}"}
    assert "<|im_end|>" in body["parameters"]["stop"]
    assert body["template"] == Modelfile.read(bundle / "Modelfile").template


def test_bundle_system_is_the_one_training_used(exported):  # type: ignore[no-untyped-def]
    """Rows trained with the run's `system` prompt must be served with that same SYSTEM."""
    from ollama_tune.export.bundle import build_modelfile
    from ollama_tune.templates import convert_chat_template

    run_dir, _ = exported
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    tpl = convert_chat_template(run["chat_template"], eos_token=run["eos_token"])
    trained = {
        **run,
        "config": {**run.get("config", {}), "system": "丁寧な日本語で答えてください。"},
    }
    mf, _ = build_modelfile(trained, "model-q8_0.gguf", 512, tpl)
    assert mf.system == "丁寧な日本語で答えてください。"
    untouched = {**run, "config": {**run.get("config", {}), "system": None}}
    mf, _ = build_modelfile(untouched, "model-q8_0.gguf", 512, tpl)
    assert mf.system == tpl.default_system


def test_export_ships_the_smallest_type_the_guard_accepts(exported, tmp_path: Path):  # type: ignore[no-untyped-def]
    run_dir, _ = exported
    run2 = tmp_path / "run"
    shutil.copytree(run_dir, run2, ignore=shutil.ignore_patterns("bundle", "merged"))
    (run2 / "data").mkdir()
    row = {"question": "返品できますか？", "answer": "30日以内なら可能です。"}
    (run2 / "data" / "test.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", "utf-8")
    # f16 first: without the guard the Modelfile would use it; q8_0 is smaller and loses nothing.
    result = CliRunner().invoke(app, ["export", str(run2), "--quant", "f16,q8_0", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["shipped"]["quant"] == "q8_0"
    assert (
        "q8_0" in data["shipped"]["reason"]
        and "smallest type within 5 points of f16" in (data["shipped"]["reason"])
    )
    bundle = run2 / "bundle"
    assert str(Modelfile.read(bundle / "Modelfile").from_).endswith("model-q8_0.gguf")
    shipped = json.loads((bundle / "run.json").read_text("utf-8"))["export"]["shipped"]
    assert shipped["quant"] == "q8_0" and set(shipped["scores"]) == {"f16", "q8_0"}
    plain = CliRunner().invoke(app, ["export", str(run2), "--quant", "q8_0", "--no-guard"])
    assert "Ships: q8_0 — the first --quant given (no quantization guard ran)" in plain.output
