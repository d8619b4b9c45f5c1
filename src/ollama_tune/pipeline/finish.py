"""The last stages of `ollama-tune run`: create in Ollama, then evaluate and write the report.

Creating is skipped with a note when no Ollama server answers (`ollama.create: auto`): the
bundle and the Modelfiles stay ready and the run ends with the `ollama create` commands.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ollama_tune.errors import ExternalServiceError, OllamaError
from ollama_tune.models import base_kind
from ollama_tune.pipeline.outputs import (
    CreateOutput,
    CustomizeOutput,
    EvalOutput,
    ExportOutput,
    SplitOutput,
    TrainOutput,
)
from ollama_tune.pipeline.runner import Context, Stage
from ollama_tune.pipeline.shared import base_gguf, base_hf_dir, settings_json


def create_commands(ctx: Context) -> list[str]:
    """The `ollama create` commands for what this run produced but did not create itself."""
    created = set(ctx.outputs.get("create", {}).get("created", []))
    cmds = []
    custom = ctx.outputs.get("customize", {}).get("modelfile")
    if custom and ctx.recipe.customized_name not in created:
        cmds.append(f"ollama create {ctx.recipe.customized_name} -f {shlex.quote(custom)}")
    bundle = ctx.outputs.get("export", {}).get("bundle")
    if bundle and ctx.recipe.tuned_name not in created:
        mf = shlex.quote(str(Path(bundle) / "Modelfile"))
        cmds.append(f"ollama create {ctx.recipe.tuned_name} -f {mf}")
    return cmds


def run_commands(ctx: Context) -> list[str]:
    """`ollama run NAME` for each model this run created in Ollama."""
    return [f"ollama run {name}" for name in ctx.outputs.get("create", {}).get("created", [])]


def _service(ctx: Context, timeout: float = 300.0) -> Any:
    from ollama_tune.ollama import OllamaService

    return OllamaService(host=ctx.recipe.ollama.host, timeout=timeout)


def _reachable(ctx: Context) -> bool:
    if ctx.recipe.ollama.create == "never":
        return False
    if "ollama_up" not in ctx.live:
        try:
            # A short timeout: a host that does not answer must not stall the pipeline.
            _service(ctx, timeout=10.0).version()
            ctx.live["ollama_up"] = True
        except (ExternalServiceError, OSError):
            ctx.live["ollama_up"] = False
    return bool(ctx.live["ollama_up"])


def _create_inputs(ctx: Context) -> dict[str, Any]:
    # Reachability is an input: a server started since the last run makes this stage re-run.
    return {
        "ollama": ctx.recipe.ollama.model_dump(mode="json"),
        "reachable": _reachable(ctx),
        "names": _targets(ctx),
    }


def _targets(ctx: Context) -> list[str]:
    """The names the models are created under (what `_create_run` hands to Ollama)."""
    return [ctx.recipe.customized_name, ctx.recipe.tuned_name]


def _create_run(ctx: Context) -> dict[str, Any]:
    o = ctx.recipe.ollama
    if o.create == "never":
        ctx.notes.append("not created in Ollama (ollama.create: never)")
        return CreateOutput().to_json()
    if not _reachable(ctx):
        if o.create == "always":
            host = o.host or "OLLAMA_HOST"
            raise OllamaError(
                f"no Ollama server answered at {host} and the recipe says ollama.create: always",
                hint="start it with `ollama serve`, or set ollama.create: auto to skip this step",
            )
        ctx.notes.append("no Ollama server reachable: skipped; the bundle is ready to import")
        return CreateOutput().to_json()
    from ollama_tune.modelfile import Modelfile

    svc = _service(ctx)
    created = []
    files = [CustomizeOutput.of(ctx).modelfile, Path(ExportOutput.of(ctx).bundle) / "Modelfile"]
    for name, path in zip(_targets(ctx), map(str, files), strict=True):
        mf = Modelfile.parse(Path(path).read_text(encoding="utf-8"), path=path)
        svc.create(name, mf, base_dir=Path(path).parent, progress=ctx.progress)
        created.append(name)
    return CreateOutput(created=created).to_json()


def model_refs(ctx: Context) -> dict[str, str]:
    """Runtime references for base / customized / tuned (see runtime.open_model)."""
    r = ctx.recipe
    created = set(CreateOutput.of(ctx).created)
    bundle = ExportOutput.of(ctx).bundle
    custom_mf = CustomizeOutput.of(ctx).modelfile
    if base_kind(r.base_model) != "ollama":
        # One runtime (llama.cpp) for all three, so latencies compare like for like.
        # An HF base has no GGUF: it runs through transformers (runtime's HF-dir form).
        base = base_gguf(ctx) or base_hf_dir(ctx)
        refs = {"base": str(base), "customized": custom_mf, "tuned": bundle}
    else:
        refs = {
            "base": f"ollama:{r.base_model}",
            "customized": f"ollama:{r.customized_name}"
            if r.customized_name in created
            else custom_mf,
            "tuned": f"ollama:{r.tuned_name}" if r.tuned_name in created else bundle,
        }
    return {k: v for k, v in refs.items() if k in r.eval.models}


def _eval_config(ctx: Context) -> Any:
    from ollama_tune.evaluate.compare import EvalConfig

    e, split = ctx.recipe.eval, SplitOutput.of(ctx)
    # The recipe's eval: section is EvalConfig's settings part; `models` picks the refs.
    return EvalConfig(
        **e.model_dump(exclude={"models", "train_sample"}),
        models=model_refs(ctx),
        test_path=Path(split.test),
        train_sample=e.train_sample if "tuned" in e.models else 0,
        train_path=Path(split.train),
    )


def _report_settings(ctx: Context) -> dict[str, Any]:
    """What the report shows besides the comparison: loss curves and `ollama run` commands."""
    models = ctx.recipe.eval.models
    curves = {"tuned": TrainOutput.of(ctx).run_dir} if "tuned" in models else {}
    created = set(CreateOutput.of(ctx).created)
    names = {"customized": ctx.recipe.customized_name, "tuned": ctx.recipe.tuned_name}
    commands = {k: f"ollama run {n}" for k, n in names.items() if n in created}
    return {"loss_curves": curves, "run_commands": commands}


def _eval_inputs(ctx: Context) -> dict[str, Any]:
    return {"eval": settings_json(_eval_config(ctx)), "report": _report_settings(ctx)}


def _eval_run(ctx: Context) -> dict[str, Any]:
    from ollama_tune.evaluate import compare_models
    from ollama_tune.report import write_report

    result = compare_models(_eval_config(ctx), progress=ctx.progress)
    report = write_report(result, ctx.workdir / "report", **_report_settings(ctx))
    if not result.passed:
        ctx.notes.append("an evaluation gate failed (see the report)")
    summary = {
        label: {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        for label, metrics in result.summaries().items()
    }
    return EvalOutput(
        report_md=str(report.markdown),
        report_html=str(report.html),
        report_json=str(report.json),
        gates_passed=bool(result.passed),
        summary=summary,
        paths=[str(report.markdown), str(report.html), str(report.json)],
    ).to_json()


def create_stage() -> Stage:
    return Stage("create", "create in Ollama", _create_inputs, _create_run, ("customize", "export"))


def eval_stage() -> Stage:
    return Stage(
        "eval",
        "eval + report",
        _eval_inputs,
        _eval_run,
        ("split", "customize", "train", "export", "create"),
    )
