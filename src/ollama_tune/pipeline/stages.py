"""The stages of `ollama-tune run`, each a thin call into one library module.

check data → split → customize → train → export (+ quantization guard) → create in Ollama →
eval base vs customized vs fine-tuned (+ report). Imports of the stage modules stay inside the
functions so that loading a recipe never pulls in torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ollama_tune._util import atomic_write_text, sha256_file
from ollama_tune.models import base_kind
from ollama_tune.pipeline.outputs import CustomizeOutput, ExportOutput, SplitOutput, TrainOutput
from ollama_tune.pipeline.runner import Context, Stage
from ollama_tune.pipeline.shared import base_gguf, file_hash, settings_json

# Each stage builds its settings in one function; `*_inputs` hashes that and `*_run` passes it,
# so a recipe key a stage reads always re-runs that stage (a stale adapter cannot ship).

# -- check -----------------------------------------------------------------------------------


def _data_settings(ctx: Context) -> dict[str, Any]:
    d = ctx.recipe.data
    return {"train": d.train, "test": d.test, "format": d.format}


def _check_inputs(ctx: Context) -> dict[str, Any]:
    s = _data_settings(ctx)
    return {
        **settings_json(s),
        "train_sha256": file_hash(s["train"]),
        "test_sha256": file_hash(s["test"]),
    }


def _check_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.data import read_examples

    s = _data_settings(ctx)
    # read_examples raises DataError listing every error-level issue with file:line.
    train = read_examples(s["train"], format=s["format"])
    test = read_examples(s["test"], format=s["format"]) if s["test"] else []
    ctx.live["train_examples"], ctx.live["test_examples"] = train, test
    return {"train_rows": len(train), "test_rows": len(test)}


# -- split -----------------------------------------------------------------------------------


def _split_settings(ctx: Context) -> dict[str, Any]:
    d = ctx.recipe.data
    return {**_data_settings(ctx), "test_ratio": d.test_ratio, "seed": d.seed}


def _split_inputs(ctx: Context) -> dict[str, Any]:
    # The files' contents too: check's outputs (row counts) can stay the same when they change.
    return {**_check_inputs(ctx), **settings_json(_split_settings(ctx))}


def _split_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.data import read_examples, split_examples, write_jsonl

    s = _split_settings(ctx)
    train = ctx.live.get("train_examples") or read_examples(s["train"], format=s["format"])
    if s["test"]:
        test = ctx.live.get("test_examples") or read_examples(s["test"], format=s["format"])
    else:
        parts = split_examples(train, test_ratio=s["test_ratio"], seed=s["seed"])
        train, test = list(parts.train), list(parts.test)
    out = ctx.workdir / "data"
    train_path, test_path = out / "train.jsonl", out / "test.jsonl"
    write_jsonl(train, train_path, style="messages")
    write_jsonl(test, test_path, style="messages")
    return SplitOutput(
        train=str(train_path),
        test=str(test_path),
        train_rows=len(train),
        test_rows=len(test),
        train_sha256=sha256_file(train_path),
        test_sha256=sha256_file(test_path),
        paths=[str(train_path), str(test_path)],
    ).to_json()


# -- customize -------------------------------------------------------------------------------


def _customize_settings(ctx: Context) -> dict[str, Any]:
    """CustomizeConfig's arguments, with the training file's path standing for its examples."""
    r, c = ctx.recipe, ctx.recipe.customize
    return {
        "examples": SplitOutput.of(ctx).train,
        # base_kind first: a base path that does not exist fails here, with its reason.
        "base_model": r.base_model
        if base_kind(r.base_model) == "ollama"
        else str(base_gguf(ctx) or r.base_model),
        **c.prompt_settings(),
    }


def _customize_inputs(ctx: Context) -> dict[str, Any]:
    return settings_json(_customize_settings(ctx))


def _customize_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.data import read_examples
    from ollama_tune.prompt import CustomizeConfig, build_customization

    s = _customize_settings(ctx)
    examples = read_examples(Path(s.pop("examples")))
    result = build_customization(CustomizeConfig(examples=examples, **s))
    ctx.notes.extend(result.warnings)
    path = ctx.workdir / "customize" / "Modelfile"
    atomic_write_text(path, result.modelfile.render())
    return CustomizeOutput(
        modelfile=str(path), sha256=sha256_file(path), paths=[str(path)]
    ).to_json()


# -- train -----------------------------------------------------------------------------------


def _train_config(ctx: Context) -> Any:
    from ollama_tune.pipeline.augment_stage import train_data
    from ollama_tune.train.config import TrainConfig

    r = ctx.recipe
    # The recipe's `train:` section is TrainSettings itself: no key is mapped by hand. The
    # validation rows are carved from the training rows, so test questions stay unseen.
    return TrainConfig(
        **r.train.model_dump(),
        data=[train_data(ctx)],
        base_model=r.base_model,
        output=ctx.workdir / "train",
        system=r.customize.system,
    )


def _train_inputs(ctx: Context) -> dict[str, Any]:
    # `resume` is how this run starts, not what it trains: an interrupted run keeps its hash.
    return settings_json(_train_config(ctx), exclude=("resume",))


def _train_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.train import train_in_child

    config = _train_config(ctx).model_copy(update={"resume": ctx.resume})
    # In its own process: its threads and heap are gone before export and evaluation.
    result = train_in_child(config, progress=ctx.progress)
    weights = sorted(Path(result.adapter_dir).glob("*.safetensors"))
    return TrainOutput(
        run_dir=str(result.run_dir),
        train_loss=result.train_loss,
        eval_loss=result.eval_loss,
        steps=result.steps,
        best=result.best,
        tokens_per_s=result.tokens_per_s,
        peak_rss_mb=result.peak_rss_mb,
        adapter_sha256=file_hash(weights[0]) if weights else None,
        paths=[str(result.run_json), str(result.adapter_dir)],
    ).to_json()


# -- export ----------------------------------------------------------------------------------


def _export_config(ctx: Context) -> Any:
    """The recipe's `export:` settings plus where the run lives; the guard answers the test
    split with the evaluation's max_tokens unless `export.guard_max_tokens` is set."""
    from ollama_tune.export import ExportConfig

    r, e = ctx.recipe, ctx.recipe.export
    return ExportConfig(
        **{**e.model_dump(), "guard_max_tokens": e.guard_max_tokens or r.eval.max_tokens},
        run_dir=Path(TrainOutput.of(ctx).run_dir),
        out_dir=ctx.workdir / "bundle",
        name=r.tuned_name,
        guard_questions=Path(SplitOutput.of(ctx).test),
    )


def _export_inputs(ctx: Context) -> dict[str, Any]:
    return {"export": settings_json(_export_config(ctx))}


def _export_run(ctx: Context) -> dict[str, Any]:
    """Export, and with `export.keep_f16: true` the quantization guard, inside `export_bundle`:
    the bundle then ships the smallest type within `export.guard_threshold`."""
    from ollama_tune.export import export_bundle

    result = export_bundle(_export_config(ctx), progress=ctx.progress)
    ctx.notes.extend(result.warnings)
    ctx.notes.extend(result.guard_notes())
    ggufs = [str(p) for p in result.ggufs.values()]
    return ExportOutput(
        bundle=str(result.bundle_dir),
        ggufs=ggufs,
        sizes={q: int(n) for q, n in result.sizes.items()},
        timings={k: round(v, 2) for k, v in result.timings.items()},
        modelfile_sha256=file_hash(Path(result.modelfile)),
        shipped=result.shipped,
        shipped_reason=result.shipped_reason,
        paths=[str(result.modelfile), *ggufs],
    ).to_json()


def build_stages() -> list[Stage]:
    from ollama_tune.pipeline.augment_stage import augment_stage
    from ollama_tune.pipeline.finish import create_stage, eval_stage

    return [
        Stage("check", "check data", _check_inputs, _check_run),
        Stage("split", "split", _split_inputs, _split_run, ("check",)),
        Stage("customize", "customize", _customize_inputs, _customize_run, ("split",)),
        augment_stage(),
        Stage("train", "train (fine-tune)", _train_inputs, _train_run, ("split", "augment")),
        Stage("export", "export (GGUF)", _export_inputs, _export_run, ("split", "train")),
        create_stage(),
        eval_stage(),
    ]
