"""The stages of `ollama-tune run`, each a thin call into one library module.

check data → split → customize → train → export (+ quantization guard) → create in Ollama →
eval base vs customized vs fine-tuned (+ report). Imports of the stage modules stay inside the
functions so that loading a recipe never pulls in torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ollama_tune._util import atomic_write_text, sha256_file
from ollama_tune.pipeline.runner import Context, Stage


def _file_hash(path: Path | None) -> str | None:
    return sha256_file(path) if path is not None and Path(path).is_file() else None


def is_embedded(base_model: str) -> bool:
    """Local bases (the SmolLM2 alias, a .gguf, an HF dir) run through llama.cpp, no Ollama."""
    return (
        base_model == "smollm2-135m"
        or base_model.endswith(".gguf")
        or Path(base_model).exists()
        or "/" in base_model
    )


# -- check -----------------------------------------------------------------------------------


def _check_inputs(ctx: Context) -> dict[str, Any]:
    d = ctx.recipe.data
    return {
        "train": _file_hash(d.train),
        "test": _file_hash(d.test),
        "format": d.format,
    }


def _check_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.data import read_examples

    d = ctx.recipe.data
    # read_examples raises DataError listing every error-level issue with file:line.
    train = read_examples(d.train, format=d.format)
    test = read_examples(d.test, format=d.format) if d.test else []
    ctx.live["train_examples"], ctx.live["test_examples"] = train, test
    return {"train_rows": len(train), "test_rows": len(test)}


# -- split -----------------------------------------------------------------------------------


def _split_inputs(ctx: Context) -> dict[str, Any]:
    d = ctx.recipe.data
    return {"test_ratio": d.test_ratio, "seed": d.seed}


def _split_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.data import read_examples, split_examples, write_jsonl

    d = ctx.recipe.data
    train = ctx.live.get("train_examples") or read_examples(d.train, format=d.format)
    if d.test:
        test = ctx.live.get("test_examples") or read_examples(d.test, format=d.format)
    else:
        parts = split_examples(train, test_ratio=d.test_ratio, seed=d.seed)
        train, test = list(parts.train), list(parts.test)
    out = ctx.workdir / "data"
    train_path, test_path = out / "train.jsonl", out / "test.jsonl"
    write_jsonl(train, train_path, style="messages")
    write_jsonl(test, test_path, style="messages")
    return {
        "train": str(train_path),
        "test": str(test_path),
        "train_rows": len(train),
        "test_rows": len(test),
        "train_sha256": sha256_file(train_path),
        "test_sha256": sha256_file(test_path),
        "paths": [str(train_path), str(test_path)],
    }


# -- customize -------------------------------------------------------------------------------


def base_gguf(ctx: Context) -> str | None:
    """The GGUF file of a local base (for FROM and the embedded runtime); None for Ollama."""
    if "base_gguf" in ctx.live:
        return ctx.live["base_gguf"]  # type: ignore[no-any-return]
    from ollama_tune.models import resolve_base_model

    ref = resolve_base_model(ctx.recipe.base_model)
    # Alias and .gguf bases keep their original file; an HF dir has no GGUF to point at.
    path = ref.source_path if ref.kind in ("alias", "gguf") else None
    ctx.live["base_gguf"] = str(path) if path else None
    ctx.live["base_hf_dir"] = str(ref.hf_dir)
    return ctx.live["base_gguf"]  # type: ignore[no-any-return]


def _customize_inputs(ctx: Context) -> dict[str, Any]:
    return {"customize": ctx.recipe.customize.model_dump(), "base": ctx.recipe.base_model}


def _customize_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.data import read_examples
    from ollama_tune.prompt import CustomizeConfig, build_customization

    r = ctx.recipe
    c = r.customize
    embedded = is_embedded(r.base_model)
    base = base_gguf(ctx) if embedded else r.base_model
    result = build_customization(
        CustomizeConfig(
            examples=read_examples(Path(ctx.outputs["split"]["train"])),
            base_model=str(base),
            system=c.system,
            shots=c.shots,
            temperature=c.temperature,
            top_p=c.top_p,
            num_ctx=c.num_ctx,
            knowledge=c.knowledge,
        )
    )
    ctx.notes.extend(result.warnings)
    path = ctx.workdir / "customize" / "Modelfile"
    atomic_write_text(path, result.modelfile.render())
    return {"modelfile": str(path), "sha256": sha256_file(path), "paths": [str(path)]}


# -- train -----------------------------------------------------------------------------------


def _train_inputs(ctx: Context) -> dict[str, Any]:
    return {"train": ctx.recipe.train.model_dump(), "base": ctx.recipe.base_model}


def _train_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.train import TrainConfig, train_lora

    r, t = ctx.recipe, ctx.recipe.train
    out = ctx.workdir / "train"
    from ollama_tune.pipeline.augment_stage import train_data

    # The validation rows that pick the best checkpoint are carved from the training rows:
    # the test questions stay unseen until the eval stage.
    result = train_lora(
        TrainConfig(
            data=[train_data(ctx)],
            test_ratio=t.val_ratio,
            base_model=r.base_model,
            output=out,
            method=t.method,
            lora_r=t.lora_r,
            lora_alpha=t.lora_alpha,
            lora_dropout=t.lora_dropout,
            learning_rate=t.learning_rate,
            epochs=t.epochs,
            max_steps=t.max_steps,
            batch_size=t.batch_size,
            grad_accum=t.gradient_accumulation_steps,
            max_seq_len=t.max_seq_len,
            seed=t.seed,
            save_steps=t.save_steps or 50,
            resume=ctx.resume,
            qlora=t.qlora,
            system=r.customize.system,
            packing=t.packing,
            gradient_checkpointing=t.gradient_checkpointing,
            val_recall=t.val_recall,
            val_questions=t.max_eval_rows or 24,
            val_max_tokens=t.val_max_tokens,
            eval_steps=t.eval_steps,
            early_stopping_patience=t.early_stopping_patience,
        ),
        progress=ctx.progress,
    )
    ctx.live["train_result"] = result
    weights = sorted(Path(result.adapter_dir).glob("*.safetensors"))
    return {
        "run_dir": str(result.run_dir),
        "train_loss": result.train_loss,
        "eval_loss": result.eval_loss,
        "steps": result.steps,
        "best": result.best,
        "tokens_per_s": result.tokens_per_s,
        "peak_rss_mb": result.peak_rss_mb,
        "adapter_sha256": _file_hash(weights[0]) if weights else None,
        "paths": [str(result.run_json), str(result.adapter_dir)],
    }


# -- export ----------------------------------------------------------------------------------


def _export_inputs(ctx: Context) -> dict[str, Any]:
    e = ctx.recipe.export
    return {"quants": e.quants, "keep_f16": e.keep_f16, "system": ctx.recipe.customize.system}


def _export_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.export import ExportConfig, export_bundle

    e = ctx.recipe.export
    result = export_bundle(
        ExportConfig(
            run_dir=Path(ctx.outputs["train"]["run_dir"]),
            quants=list(e.quants),
            out_dir=ctx.workdir / "bundle",
            name=ctx.recipe.tuned_name,
            keep_f16=e.keep_f16,
        ),
        progress=ctx.progress,
    )
    ctx.notes.extend(result.warnings)
    bundle = Path(result.bundle_dir)
    ggufs = [str(p) for p in result.ggufs.values()]
    result = _guard(ctx, result)
    return {
        "bundle": str(bundle),
        "ggufs": ggufs,
        "sizes": {q: int(n) for q, n in result.sizes.items()},
        "timings": {k: round(v, 2) for k, v in result.timings.items()},
        "modelfile_sha256": _file_hash(Path(result.modelfile)),
        "shipped": result.shipped,
        "shipped_reason": result.shipped_reason,
        "paths": [str(result.modelfile), *ggufs],
    }


def _guard(ctx: Context, result: Any) -> Any:
    """Quantization guard: needs the f16 reference (`export.keep_f16: true`) next to the quants;
    the bundle then ships the smallest type within the threshold (`export.ship_quant`)."""
    e, ggufs = ctx.recipe.export, dict(result.ggufs)
    if e.guard_threshold is None or "f16" not in ggufs or len(ggufs) < 2:
        return result
    from ollama_tune.evaluate import guard_quantization
    from ollama_tune.evaluate.testset import read_test_examples
    from ollama_tune.export import ship_quant

    guard = guard_quantization(
        ggufs,
        read_test_examples(Path(ctx.outputs["split"]["test"])),
        threshold=e.guard_threshold,
        max_tokens=ctx.recipe.eval.max_tokens,
        progress=ctx.progress,
        candidates=list(e.quants),
    )
    ctx.notes.extend(w.message for w in guard.warnings)
    if guard.choice is None:
        return result
    ctx.notes.append(f"ships {guard.choice.quant}: {guard.choice.reason}")
    return ship_quant(
        result, guard.choice.quant, guard.choice.reason, scores=guard.scores,
        reference=guard.reference,
    )  # fmt: skip


def build_stages() -> list[Stage]:
    from ollama_tune.pipeline.augment_stage import augment_stage
    from ollama_tune.pipeline.finish import create_stage, eval_stage

    return [
        Stage("check", "check data", _check_inputs, _check_run),
        Stage("split", "split", _split_inputs, _split_run, ("check",)),
        Stage("customize", "customize", _customize_inputs, _customize_run, ("split",)),
        augment_stage(),
        Stage("train", "train (LoRA)", _train_inputs, _train_run, ("split", "augment")),
        Stage("export", "export (GGUF)", _export_inputs, _export_run, ("train",)),
        create_stage(),
        eval_stage(),
    ]
