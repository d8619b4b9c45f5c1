"""The Ollama bundle around exported GGUFs: Modelfile, README and run.json.

The TEMPLATE comes from the chat template the adapter was trained with (`templates`), checked
byte-for-byte against Go's `text/template` when `go` is installed, and the Modelfile is linted
before the bundle counts as written. Every file goes through a temporary name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune._util import atomic_write_json, atomic_write_text
from ollama_tune.errors import ExportError


@dataclass
class BundleFiles:
    """What `write_bundle_files` wrote and checked."""

    modelfile: Path
    readme: Path
    run_json: Path
    family: str | None = None
    stop: list[str] = field(default_factory=list)
    parity_checked: bool = False
    lint_warnings: list[str] = field(default_factory=list)


# TEMPLATEs the user chose (an Ollama model's, a file): the source of truth, not a conversion.
_GIVEN = ("ollama", "file")


def _template_and_check(run: dict[str, Any]) -> tuple[Any, bool, list[str]]:
    """Go TEMPLATE + stops for the trained chat template; parity checked when go exists.

    The third item: how a TEMPLATE the user chose differs from the model's native Jinja
    template (reported, not refused: training rendered through the chosen one)."""
    from ollama_tune import templates

    chat_template = run.get("chat_template")
    if not chat_template:
        raise ExportError(
            "run.json has no chat_template, so the Ollama TEMPLATE cannot be derived.",
            hint="Re-run training with a tokenizer that has a chat template.",
        )
    bos, eos = run.get("bos_token"), run.get("eos_token")
    if run.get("ollama_template"):  # the TEMPLATE training rendered its text through
        tpl = templates.OllamaTemplate.from_json(run["ollama_template"])
    else:
        tpl = templates.convert_chat_template(chat_template, bos_token=bos, eos_token=eos)
    given = tpl.matched in _GIVEN and run.get("template_renderer") == "go"
    if not templates.go_available():
        return tpl, given, []
    if given:
        # Training printed its text with this very TEMPLATE through Go: what Ollama serves is
        # what training saw by construction; the native format is only a reference.
        return tpl, True, _native_distance(chat_template, tpl, bos, eos)
    parity = templates.check_parity(chat_template, tpl, bos_token=bos, eos_token=eos)
    if not parity.ok:
        raise ExportError(
            f"The Ollama TEMPLATE does not render like the trained chat template "
            f"({tpl.family}): {parity.summary()}",
            hint="Pass a hand-checked template with --template FILE, or report the model.",
        )
    return tpl, True, []


def _native_distance(chat_template: str, tpl: Any, bos: Any, eos: Any) -> list[str]:
    from ollama_tune import templates
    from ollama_tune.errors import TemplateError

    try:
        parity = templates.check_parity(chat_template, tpl, bos_token=bos, eos_token=eos)
    except TemplateError as exc:
        return [f"template-distance: not compared with the native format: {exc.message}"]
    if parity.ok:
        return []
    head = parity.summary().splitlines()[0]
    return [f"template-distance: the TEMPLATE is not the model's native format ({head})"]


def build_modelfile(
    run: dict[str, Any], gguf_name: str, num_ctx: int, tpl: Any
) -> tuple[Any, list[str]]:
    """The bundle Modelfile: FROM ./model-<quant>.gguf, TEMPLATE, SYSTEM, stops, num_ctx."""
    from ollama_tune.modelfile import Modelfile

    stops: list[str] = []
    for s in [*tpl.stop, *(run.get("stop_tokens") or [])]:
        if s and s not in stops:
            stops.append(s)
    params = [("stop", s) for s in stops] + [("num_ctx", str(num_ctx))]
    # Serving must see what training saw: rows without a system prompt were trained with the
    # run's `system` when one was set, else with the chat template's own default.
    system = (run.get("config") or {}).get("system") or tpl.default_system or None
    mf = Modelfile(
        from_=f"./{gguf_name}",
        template=tpl.template,
        system=system,
        parameters=params,
    )
    return mf, stops


def _readme(name: str, quants: list[str], sizes: dict[str, int], primary: str) -> str:
    rows = "\n".join(f"| `model-{q}.gguf` | {sizes[q] / 1e6:.1f} MB |" for q in quants)
    return f"""# {name}

Fine-tuned with ollama-tune. The Modelfile uses `model-{primary}.gguf`; edit its FROM line to
pick another quantization.

| file | size |
|---|---|
{rows}

Register it with Ollama (run in this folder):

```sh
ollama create {name} -f Modelfile
# or, through ollama-tune (checks the server and uploads the GGUF):
ollama-tune create . --name {name}
ollama run {name}
```

Try it without Ollama: `ollama-tune chat .`
`run.json` records the base model, data, training config and this export.
"""


def write_bundle_files(
    bundle_dir: Path,
    run: dict[str, Any],
    *,
    name: str,
    quants: list[str],
    sizes: dict[str, int],
    num_ctx: int,
) -> BundleFiles:
    """Modelfile (linted), README.md and run.json into `bundle_dir`."""
    tpl, checked, distance = _template_and_check(run)
    primary = quants[0]
    mf, stops = build_modelfile(run, f"model-{primary}.gguf", num_ctx, tpl)
    issues = mf.lint(base_dir=bundle_dir)
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        first = errors[0]
        raise ExportError(
            f"The generated Modelfile does not pass the linter: {first.code}: {first.message}",
            hint=first.hint or "Report this as a bug in ollama-tune export.",
        )
    modelfile = atomic_write_text(bundle_dir / "Modelfile", mf.render())
    readme = atomic_write_text(bundle_dir / "README.md", _readme(name, quants, sizes, primary))
    run_json = atomic_write_json(bundle_dir / "run.json", run)
    return BundleFiles(
        modelfile=modelfile,
        readme=readme,
        run_json=run_json,
        family=getattr(tpl, "family", None),
        stop=stops,
        parity_checked=checked,
        lint_warnings=distance
        + [f"{i.code}: {i.message}" for i in issues if i.severity != "error"],
    )
