"""`ollama-tune modelfile lint FILE` and `modelfile show FILE`: check a Modelfile like Ollama would.

Lint exits 1 when it finds errors (warnings alone exit 0), so it can gate CI.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ollama_tune.cli._options import JSON

modelfile_app = typer.Typer(help="Check and inspect Modelfiles.", no_args_is_help=True)


@modelfile_app.command("lint")
def lint_cmd(
    file: Path = typer.Argument(..., help="The Modelfile to check."),
    as_json: bool = JSON,
    allow_outside: bool = typer.Option(
        False, "--allow-outside", help="Accept FROM/ADAPTER files outside the Modelfile's folder."
    ),
) -> None:
    """Report every problem: parse errors, unknown/removed/ignored PARAMETERs, bad values,
    missing FROM, files that are not model weights or lie outside the folder, a bad TEMPLATE."""
    from rich.markup import escape
    from rich.table import Table

    from ollama_tune.cli._common import console, err_console, print_json
    from ollama_tune.modelfile import LintIssue, Modelfile

    mf, problems = Modelfile.read_all(file)
    parse_issues = [LintIssue("error", p.line, "parse-error", p.message, p.hint) for p in problems]
    issues = mf.lint(allow_outside=allow_outside)
    errors = sum(1 for i in issues if i.severity == "error") + len(parse_issues)
    # Parse errors go to stderr like every command's errors; the rest is the report.
    for p in parse_issues:
        where = escape(f"{file}:{p.line}: {p.message}")
        err_console.print(f"[bold red]Error:[/bold red] {where}", highlight=False)
    if parse_issues and parse_issues[0].hint:
        hint = escape(parse_issues[0].hint)
        err_console.print(f"[yellow]Hint:[/yellow] {hint}", highlight=False)
    if as_json:
        print_json([i.__dict__ for i in sorted(parse_issues + issues, key=_order)])
    elif not issues and not parse_issues:
        console.print(f"[green]OK[/green] {file}: no problems found")
    elif issues:
        table = Table("where", "severity", "problem", "fix", title=f"{file}")
        for i in issues:
            colour = "red" if i.severity == "error" else "yellow"
            where = f"{file}:{i.line}" if i.line else str(file)
            cells = (escape(where), escape(i.message), escape(i.hint or ""))
            table.add_row(cells[0], f"[{colour}]{i.severity}[/{colour}]", *cells[1:])
        console.print(table)
    if not as_json and (issues or parse_issues):
        console.print(f"{errors} error(s), {len(issues) + len(parse_issues) - errors} warning(s)")
    if errors:
        raise typer.Exit(1)


def _order(issue: object) -> tuple[int, str]:
    return (getattr(issue, "line", None) or 0, getattr(issue, "code", ""))


@modelfile_app.command("show")
def show_cmd(
    file: Path = typer.Argument(..., help="The Modelfile to read."),
    create_args: bool = typer.Option(
        False, "--create-args", help="Print the JSON body `POST /api/create` would get."
    ),
) -> None:
    """Print the Modelfile as Ollama reads it (normalised), or its create-API arguments."""
    from ollama_tune.cli._common import console
    from ollama_tune.modelfile import Modelfile

    mf = Modelfile.read(file)
    if create_args:
        text = json.dumps(mf.to_create_args(file.parent), ensure_ascii=False, indent=2)
        console.print(text, markup=False, highlight=False)
    else:
        console.print(mf.render(), markup=False, highlight=False, end="")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(modelfile_app, name="modelfile")
