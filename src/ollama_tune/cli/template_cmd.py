"""`ollama-tune template show SOURCE` and `template check SOURCE [--template FILE]`.

`show` prints the Ollama TEMPLATE, stop tokens and default SYSTEM derived from a model's chat
template; `check` renders the conversation battery with the chat template and with Go's
text/template the way Ollama feeds it, and exits 1 unless every rendering is byte-identical.
SOURCE is a model/tokenizer folder, a `.gguf` file or a `.jinja` file.
"""

from __future__ import annotations

from pathlib import Path

import typer

template_app = typer.Typer(
    help="Derive and check the Ollama TEMPLATE of a model's chat template.", no_args_is_help=True
)


@template_app.command("show")
def show_cmd(
    source: Path = typer.Argument(..., help="Model folder, .gguf or .jinja file."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Print the Ollama TEMPLATE, stop tokens and SYSTEM for SOURCE's chat template."""
    from ollama_tune.cli._common import console, print_json
    from ollama_tune.templates import convert_chat_template
    from ollama_tune.templates.source import load_chat_template

    src = load_chat_template(source)
    tmpl = convert_chat_template(
        src.chat_template, bos_token=src.bos_token, eos_token=src.eos_token
    )
    if as_json:
        print_json({"source": src.origin, **tmpl.__dict__})
        return
    console.print(f"[bold]{src.origin}[/bold]: family {tmpl.family} ({tmpl.variant or 'markers'})")
    console.print(f"stop: {', '.join(tmpl.stop)}", markup=False, highlight=False)
    console.print(f"SYSTEM: {tmpl.default_system or '(none)'}", markup=False, highlight=False)
    for note in tmpl.notes:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False, soft_wrap=True)
    console.print("TEMPLATE:", style="bold")
    # soft_wrap: a wrapped TEMPLATE would no longer be the TEMPLATE when pasted.
    console.print(tmpl.template, markup=False, highlight=False, soft_wrap=True)


@template_app.command("check")
def check_cmd(
    source: Path = typer.Argument(..., help="Model folder, .gguf or .jinja file."),
    template_file: Path | None = typer.Option(
        None, "--template", help="Check this hand-written Go TEMPLATE file instead."
    ),
    system: str | None = typer.Option(
        None, "--system", help="The Modelfile SYSTEM to feed (default: the template's own)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print every case as JSON."),
) -> None:
    """Prove the Ollama TEMPLATE prints exactly what the chat template prints (needs `go`)."""
    from rich.table import Table

    from ollama_tune.cli._common import console, print_json
    from ollama_tune.templates import check_parity, check_template_file, convert_chat_template
    from ollama_tune.templates.source import load_chat_template

    src = load_chat_template(source)
    bos, eos = src.bos_token, src.eos_token
    if template_file is not None:
        tmpl, result = check_template_file(
            template_file, src.chat_template, bos_token=bos, eos_token=eos, system=system
        )
    else:
        tmpl = convert_chat_template(src.chat_template, bos_token=bos, eos_token=eos)
        result = check_parity(src.chat_template, tmpl, bos_token=bos, eos_token=eos, system=system)
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "family": tmpl.family,
                "cases": [{**c.__dict__, "ok": c.ok} for c in result.cases],
            }
        )
    else:
        table = Table("conversation", "generation prompt", "result", title=src.origin)
        for case in result.cases:
            if case.skipped:
                verdict = f"[yellow]skipped[/yellow]: {case.skipped}"
            elif case.ok:
                verdict = f"[green]identical[/green] ({len(case.expected.encode())} bytes)"
            else:
                verdict = (
                    f"[red]differs[/red] at byte {case.diff_at}"
                    if not case.error
                    else (f"[red]Go error[/red]: {case.error}")
                )
            table.add_row(case.name, "yes" if case.add_generation_prompt else "no", verdict)
        console.print(table)
        console.print(result.summary(), markup=False, highlight=False)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(template_app, name="template")
