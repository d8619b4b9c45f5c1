"""`ollama-tune recommend`: which base models and training settings fit this machine and data.

Reads the machine (RAM, GPU and its memory) and the data size, then checks each candidate
against the guide's memory table (llama3.2:1b ≈4 GB, 3b ≈8 GB, mistral:7b ≈16 GB, plus the
embedded SmolLM2-135M). Training time is an *estimate* from the measured-throughput table below.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ollama_tune.data.tokens import estimate_tokens

Device = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class Candidate:
    name: str  # what to pass as `--base-model`
    params_b: float
    lora_gb: float  # memory to train with LoRA (16-bit weights on GPU, fp32 on CPU ×2)
    qlora_gb: float  # memory to train with 4-bit QLoRA (CUDA only)
    note: str


# The guide's table for the Ollama models; SmolLM2-135M is the embedded CPU default.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("smollm2-135m", 0.135, 1.0, 1.0, "embedded default, runs offline on any CPU"),
    Candidate("llama3.2:1b", 1.2, 4.0, 2.5, "light tasks, fast answers"),
    Candidate("llama3.2:3b", 3.2, 8.0, 5.0, "balanced; good Japanese with a prompt"),
    Candidate("mistral:7b", 7.2, 16.0, 8.0, "higher quality answers"),
)

# Training tokens/s (answer + prompt tokens) by model and device kind. `measured` rows come
# from bench/bench_train.py (BENCHMARKS.md); the rest are estimates scaled by parameter count.
THROUGHPUT: dict[tuple[str, str], tuple[float, str]] = {
    ("smollm2-135m", "cpu"): (221.0, "measured: LoRA r=8, fp32, 2 CPU cores (BENCHMARKS.md)"),
    ("llama3.2:1b", "cpu"): (15.0, "estimate: the SmolLM2 CPU figure scaled by parameters"),
    ("llama3.2:3b", "cpu"): (5.5, "estimate: the SmolLM2 CPU figure scaled by parameters"),
    ("mistral:7b", "cpu"): (2.4, "estimate: the SmolLM2 CPU figure scaled by parameters"),
    ("smollm2-135m", "cuda"): (40000.0, "estimate: one 24 GB-class GPU, bf16"),
    ("llama3.2:1b", "cuda"): (9000.0, "estimate: one 24 GB-class GPU, bf16"),
    ("llama3.2:3b", "cuda"): (3500.0, "estimate: one 24 GB-class GPU, bf16"),
    ("mistral:7b", "cuda"): (1500.0, "estimate: one 24 GB-class GPU, bf16 / 4-bit"),
}
# bf16 autocast over fp32 on CPUs with AVX512-BF16/AMX: 335.6 vs 221.2 tokens/s (BENCHMARKS.md).
CPU_BF16_SPEEDUP = 1.5
# On CPU, recommend only models whose estimated epoch fits in this many minutes.
CPU_PATIENCE_MIN = 120.0


@dataclass(frozen=True)
class MachineInfo:
    ram_gb: float
    cpu_count: int
    gpu_name: str | None = None
    gpu_gb: float | None = None
    cpu_bf16: bool = False  # AVX512-BF16 or AMX: training uses bf16 autocast

    @property
    def device(self) -> Device:
        return "cuda" if self.gpu_gb else "cpu"


@dataclass(frozen=True)
class DataInfo:
    path: str
    rows: int
    tokens: int  # estimated prompt + answer tokens over all rows


@dataclass(frozen=True)
class ModelFit:
    name: str
    fits: bool
    method: str  # "LoRA" | "QLoRA" | "-"
    memory_gb: float
    batch_size: int
    est_minutes: float | None
    throughput_source: str
    note: str


@dataclass(frozen=True)
class RecommendResult:
    machine: MachineInfo
    data: DataInfo | None
    fits: list[ModelFit] = field(default_factory=list)
    recommended: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _gpu_from_nvidia_smi() -> tuple[str, float] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.strip().splitlines()[0] if out.strip() else ""
    name, _, mib = first.rpartition(",")
    try:
        return name.strip(), float(mib) / 1024
    except ValueError:
        return None


def _gpu_from_torch() -> tuple[str, float] | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return props.name, props.total_memory / 1024**3


def detect_machine() -> MachineInfo:
    """RAM and CPU from psutil; GPU from nvidia-smi, else torch.cuda when it is installed."""
    import os

    import psutil

    gpu = _gpu_from_nvidia_smi() or _gpu_from_torch()
    return MachineInfo(
        ram_gb=round(psutil.virtual_memory().total / 1024**3, 1),
        cpu_count=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
        gpu_name=gpu[0] if gpu else None,
        gpu_gb=round(gpu[1], 1) if gpu else None,
        cpu_bf16=_cpu_has_bf16(),
    )


def _cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """The CPU flags training's bf16 "auto" looks for, read without importing torch."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False  # not Linux: assume fp32, the slower (safer) estimate
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    return "avx512_bf16" in flags or "amx_bf16" in flags


def measure_data(path: str | Path) -> DataInfo:
    """Rows and estimated tokens of a data file (any format the data module reads)."""
    from ollama_tune.data import read_examples

    examples = read_examples(path)
    tokens = sum(
        # ~30 tokens a row for the chat template's role markers and default system prompt.
        estimate_tokens("".join(m.content for m in ex.messages)) + 30
        for ex in examples
    )
    return DataInfo(str(path), len(examples), tokens)


def _fit_one(cand: Candidate, machine: MachineInfo, data: DataInfo | None) -> ModelFit:
    dev = machine.device
    budget = machine.gpu_gb if dev == "cuda" else machine.ram_gb
    assert budget is not None
    # CPU training keeps fp32 weights and has no 4-bit kernels: twice the 16-bit figure.
    lora_need = cand.lora_gb if dev == "cuda" else cand.lora_gb * 2
    if lora_need <= budget * 0.85:
        method, need = "LoRA", lora_need
    elif dev == "cuda" and cand.qlora_gb <= budget * 0.85:
        method, need = "QLoRA", cand.qlora_gb
    else:
        method, need = "-", lora_need
    fits = method != "-"
    headroom = budget - need
    batch = 1 if not fits else max(1, min(16, int(headroom // max(cand.params_b, 0.25)) or 1))
    if dev == "cpu":
        batch = min(batch, 4)  # larger CPU batches only add padding work
    tps, source = THROUGHPUT.get((cand.name, dev), (0.0, "no figure"))
    if dev == "cpu" and machine.cpu_bf16:
        tps, source = tps * CPU_BF16_SPEEDUP, f"{source}; ×{CPU_BF16_SPEEDUP} for bf16 (measured)"
    minutes = round(data.tokens / tps / 60, 1) if data and tps and fits else None
    note = cand.note
    if not fits:
        note = f"needs ≈{need:g} GB; use a GPU (QLoRA) or the customize path"
    elif dev == "cpu" and cand.params_b > 1.0:
        note = "fits in RAM but trains very slowly on CPU; prefer the customize path"
    return ModelFit(cand.name, fits, method, round(need, 1), batch, minutes, source, note)


def recommend(
    data: str | Path | None = None, machine: MachineInfo | None = None
) -> RecommendResult:
    """Check every candidate base model against this machine (and data, when given)."""
    machine = machine or detect_machine()
    info = measure_data(data) if data is not None else None
    fits = [_fit_one(c, machine, info) for c in CANDIDATES]
    # The largest model that fits and is practical: on CPU, one whose epoch is estimated to
    # finish within CPU_PATIENCE_MIN (without data, at most 1.5B parameters).
    best = None
    for cand, fit in zip(CANDIDATES, fits, strict=True):
        if not fit.fits:
            continue
        if machine.device == "cpu":
            practical = (
                fit.est_minutes <= CPU_PATIENCE_MIN
                if fit.est_minutes is not None
                else cand.params_b <= 1.5
            )
            if not practical:
                continue
        best = cand.name
    return RecommendResult(machine, info, fits, best)
