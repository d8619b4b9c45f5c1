"""`ollama-tune template show SOURCE` and `template check SOURCE [--template FILE|ollama:NAME]`.

`show` prints the Ollama TEMPLATE, stop tokens and default SYSTEM for SOURCE and proves them with
the Go parity check (exit 1 on any difference); `check` prints every conversation of the check.
SOURCE is a model/tokenizer folder, a `.gguf` file, a `.jinja` file or `ollama:NAME` (a model an
Ollama server has: its own TEMPLATE, compared with its GGUF's chat template when reported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ollama_tune.cli._options import JSON

template_app = typer.Typer(
    help="Derive and check the Ollama TEMPLATE of a model's chat template.", no_args_is_help=True
)

_SOURCE_HELP = "Model folder, .gguf, .jinja file or ollama:NAME."


def _resolve(source: str, template: str | None, system: str | None) -> tuple[Any, Any, str]:
    """(OllamaTemplate, ParityResult or None, origin) for SOURCE (+ --template) as asked."""
    from ollama_tune.errors import TemplateError
    from ollama_tune.templates import check_parity, check_template_file, convert_chat_template
    from ollama_tune.templates.gorender import go_available
    from ollama_tune.templates.ollama_source import is_ollama_ref, load_ollama_template
    from ollama_tune.templates.source import load_chat_template

    renderer = "go" if go_available() else "python"
    if is_ollama_ref(source):
        tmpl, chat = load_ollama_template(source)
        bos = eos = None
        origin = source
    else:
        src = load_chat_template(Path(source))
        chat, bos, eos, origin = src.chat_template, src.bos_token, src.eos_token, src.origin
        tmpl = None
    if template is not None and is_ollama_ref(template):
        tmpl, _ = load_ollama_template(template)
    elif template is not None:
        if chat is None:
            raise TemplateError(
                f"{origin}: no chat template to check {template} against",
                hint="Check the TEMPLATE file against a model folder, .gguf or .jinja file.",
            )
        tmpl, result = check_template_file(
            template, chat, bos_token=bos, eos_token=eos, system=system
        )
        return tmpl, result, origin
    if tmpl is None:
        tmpl = convert_chat_template(chat, bos_token=bos, eos_token=eos)
    if chat is None:
        return tmpl, None, origin
    if tmpl.layout is None:
        renderer = "go"  # a TEMPLATE that was not converted can only be checked by Go
    result = check_parity(
        chat, tmpl, bos_token=bos, eos_token=eos, system=system, renderer=renderer
    )
    return tmpl, result, origin


def _parity_json(result: Any) -> dict[str, Any]:
    if result is None:
        return {"ok": None, "summary": "no chat template to compare with", "cases": []}
    return {
        "ok": result.ok,
        "summary": result.summary(),
        "cases": [
            {
                "name": c.name,
                "generation_prompt": c.add_generation_prompt,
                "ok": c.ok,
                "skipped": c.skipped,
                "error": c.error,
                "diff_at": c.diff_at,
                "detail": c.describe(),
            }
            for c in result.cases
        ],
    }


@template_app.command("show")
def show_cmd(
    source: str = typer.Argument(..., help=_SOURCE_HELP),
    as_json: bool = JSON,
) -> None:
    """Print the Ollama TEMPLATE, stop tokens and SYSTEM for SOURCE, proven by the parity check."""
    from ollama_tune.cli._common import console, print_json
    from ollama_tune.templates.gorender import go_available

    tmpl, result, origin = _resolve(source, None, None)
    if as_json:
        print_json({"source": origin, **tmpl.to_json(), **_parity_json(result)})
    else:
        console.print(f"[bold]{origin}[/bold]: {tmpl.family} ({tmpl.matched})", highlight=False)
        console.print(f"stop: {', '.join(tmpl.stop)}", markup=False, highlight=False)
        console.print(f"SYSTEM: {tmpl.default_system or '(none)'}", markup=False, highlight=False)
        for note in tmpl.notes:
            console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
        if result is None:
            console.print("[yellow]note:[/yellow] no chat template to compare the TEMPLATE with")
        else:
            how = "Go text/template" if go_available() else "the converted layout (Go not found)"
            console.print(f"{result.summary()} (rendered with {how})", markup=False)
        console.print("TEMPLATE:", style="bold")
        # soft_wrap: a wrapped TEMPLATE would no longer be the TEMPLATE when pasted.
        console.print(tmpl.template, markup=False, highlight=False, soft_wrap=True)
    if result is not None and not result.ok:
        raise typer.Exit(1)


@template_app.command("check")
def check_cmd(
    source: str = typer.Argument(..., help=_SOURCE_HELP),
    template_file: str | None = typer.Option(
        None, "--template", help="Check this Go TEMPLATE file (or ollama:NAME's) instead."
    ),
    system: str | None = typer.Option(
        None, "--system", help="The Modelfile SYSTEM to feed (default: the template's own)."
    ),
    as_json: bool = JSON,
) -> None:
    """Prove the Ollama TEMPLATE prints exactly what the chat template prints (needs `go`)."""
    from rich.table import Table

    from ollama_tune.cli._common import console, print_json
    from ollama_tune.errors import TemplateError

    tmpl, result, origin = _resolve(source, template_file, system)
    if result is None:
        raise TemplateError(
            f"{origin}: no chat template to check the TEMPLATE against",
            hint="The Ollama server did not report tokenizer.chat_template; check a model folder.",
        )
    if as_json:
        print_json({"source": origin, **tmpl.to_json(), **_parity_json(result)})
    else:
        table = Table("conversation", "generation prompt", "result", title=origin)
        for case in result.cases:
            if case.skipped:
                verdict = f"[yellow]skipped[/yellow]: {case.skipped}"
            elif case.ok:
                verdict = f"[green]identical[/green] ({len(case.expected.encode())} bytes)"
            elif case.error:
                verdict = f"[red]Go error[/red]: {case.error}"
            else:
                verdict = f"[red]differs[/red] at byte {case.diff_at}"
            table.add_row(case.name, "yes" if case.add_generation_prompt else "no", verdict)
        console.print(table)
        console.print(result.summary(), markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(template_app, name="template")
