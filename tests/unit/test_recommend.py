"""`recommend`: memory fits against the guide's table, time estimates, CLI output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ollama_tune.cli import app
from ollama_tune.recommend import MachineInfo, detect_machine, estimate_tokens, recommend


def test_small_cpu_machine_fits_only_the_small_models() -> None:
    res = recommend(machine=MachineInfo(ram_gb=16.0, cpu_count=2))
    fits = {f.name: f for f in res.fits}
    assert fits["smollm2-135m"].fits and fits["llama3.2:1b"].fits
    # 3b needs 8 GB in 16-bit, twice that in fp32 on CPU: more than 85% of 16 GB.
    assert not fits["llama3.2:3b"].fits and not fits["mistral:7b"].fits
    assert res.recommended == "llama3.2:1b"
    assert all(f.method in ("LoRA", "-") for f in res.fits)  # no 4-bit kernels on CPU


def test_gpu_that_is_too_small_for_lora_falls_back_to_qlora() -> None:
    res = recommend(machine=MachineInfo(ram_gb=32.0, cpu_count=8, gpu_name="T4", gpu_gb=12.0))
    fits = {f.name: f for f in res.fits}
    assert fits["llama3.2:3b"].method == "LoRA"
    assert fits["mistral:7b"].method == "QLoRA" and fits["mistral:7b"].fits
    assert res.recommended == "mistral:7b"


def test_time_estimate_scales_with_the_data(tmp_path: Path) -> None:
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    row = {"instruction": "返品の期限はいつまでですか？", "output": "商品到着後30日以内です。" * 5}
    small.write_text("\n".join(json.dumps(row, ensure_ascii=False) for _ in range(10)) + "\n")
    big.write_text("\n".join(json.dumps(row, ensure_ascii=False) for _ in range(100)) + "\n")
    machine = MachineInfo(ram_gb=16.0, cpu_count=2)
    a, b = recommend(small, machine=machine), recommend(big, machine=machine)
    assert a.data is not None and b.data is not None
    assert (a.data.rows, b.data.rows) == (10, 100)
    ta = next(f for f in a.fits if f.name == "smollm2-135m").est_minutes
    tb = next(f for f in b.fits if f.name == "smollm2-135m").est_minutes
    assert ta is not None and tb is not None and tb > ta * 5


def test_token_estimate_counts_japanese_denser_than_english() -> None:
    assert estimate_tokens("返品の期限") > estimate_tokens("abcde")


def test_detect_machine_reads_real_ram() -> None:
    m = detect_machine()
    assert m.ram_gb > 0.5 and m.cpu_count >= 1


def test_cli_recommend_prints_a_table_and_json() -> None:
    res = CliRunner().invoke(app, ["recommend"])
    assert res.exit_code == 0, res.output
    assert "llama3.2:1b" in res.output and "estimates" in res.output
    js = CliRunner().invoke(app, ["recommend", "--json"])
    data = json.loads(js.output)
    assert {f["name"] for f in data["fits"]} >= {"smollm2-135m", "llama3.2:3b", "mistral:7b"}


def test_cpu_recommendation_drops_models_too_slow_for_the_data(tmp_path: Path) -> None:
    data = tmp_path / "faq.jsonl"
    row = {"instruction": "配送料はいくらですか？", "output": "全国一律550円です。" * 10}
    data.write_text("\n".join(json.dumps(row, ensure_ascii=False) for _ in range(1000)) + "\n")
    res = recommend(data, machine=MachineInfo(ram_gb=32.0, cpu_count=2))
    one_b = next(f for f in res.fits if f.name == "llama3.2:1b")
    assert one_b.fits and one_b.est_minutes is not None and one_b.est_minutes > 120
    assert res.recommended == "smollm2-135m"


def test_cpu_bf16_shortens_the_estimate_and_is_read_from_cpu_flags(tmp_path: Path) -> None:
    from ollama_tune.recommend import CPU_BF16_SPEEDUP, _cpu_has_bf16

    data = tmp_path / "faq.jsonl"
    row = {"instruction": "配送料はいくらですか？", "output": "全国一律550円です。" * 10}
    data.write_text("\n".join(json.dumps(row, ensure_ascii=False) for _ in range(200)) + "\n")

    def smol(machine: MachineInfo) -> tuple[float | None, str]:
        fit = next(f for f in recommend(data, machine=machine).fits if f.name == "smollm2-135m")
        return fit.est_minutes, fit.throughput_source

    fp32, bf16 = smol(MachineInfo(32.0, 2)), smol(MachineInfo(32.0, 2, cpu_bf16=True))
    assert fp32[0] is not None and bf16[0] is not None
    assert bf16[0] == pytest.approx(fp32[0] / CPU_BF16_SPEEDUP, abs=0.1)
    assert "bf16" in bf16[1] and "bf16" not in fp32[1]

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 sha_ni\n")
    assert _cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert not _cpu_has_bf16(cpuinfo)
    assert not _cpu_has_bf16(tmp_path / "missing")
