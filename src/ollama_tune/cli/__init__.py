"""The command line: the only place that prints or exits.

Each command parses its flags, builds a `*Config`, calls one library function and renders the
`*Result`. Errors from the library (`OllamaTuneError`) become a message and an exit code here:
0 ok, 1 problems found, 2 usage error, 3 an external service failed. `OLLAMA_TUNE_DEBUG=1`
shows tracebacks. Sub-command modules keep heavy imports inside their functions so that
`--help` and `data check` stay instant.
"""

from __future__ import annotations

import os
import sys

import click
import typer

from ollama_tune import __version__
from ollama_tune.cli import (
    _interrupts,
    augment_cmd,
    chat_cmd,
    customize_cmd,
    data_cmd,
    eval_cmd,
    export_cmd,
    modelfile_cmd,
    models_cmd,
    run_cmd,
    template_cmd,
    train_cmd,
)
from ollama_tune.cli._common import err_console
from ollama_tune.errors import OllamaTuneError

try:  # typer >= 0.29 vendors its own click: its parse errors are not `click` exceptions.
    from typer._click import exceptions as _typer_click

    _CLICK_ERRORS: tuple[type[Exception], ...] = (
        click.ClickException,
        _typer_click.ClickException,
    )
except ImportError:  # older typer uses click itself
    _CLICK_ERRORS = (click.ClickException,)
_ABORTS: tuple[type[BaseException], ...] = (click.exceptions.Abort, typer.Abort)

app = typer.Typer(
    name="ollama-tune",
    help="Turn your own question→answer data into a custom Ollama model, and prove it got better.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ollama-tune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Turn your own question→answer data into a custom Ollama model, and prove it got better."""


for _module in (
    data_cmd,
    modelfile_cmd,
    customize_cmd,
    models_cmd,
    train_cmd,
    export_cmd,
    chat_cmd,
    eval_cmd,
    template_cmd,
    run_cmd,
):
    _module.register(app)
augment_cmd.register(data_cmd.data_app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `ollama-tune` script: runs the app and owns every exit code."""
    debug = os.environ.get("OLLAMA_TUNE_DEBUG", "") not in ("", "0")
    args = sys.argv[1:] if argv is None else argv
    with _interrupts.handled() as caught:
        try:
            rv = app(args=args, prog_name="ollama-tune", standalone_mode=False)
        except _ABORTS:
            if caught.signal is None:
                err_console.print("[red]Aborted.[/red]")
                sys.exit(130)
            rv = None
        except KeyboardInterrupt:
            rv = None
        except _CLICK_ERRORS as exc:
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except OllamaTuneError as exc:
            if debug:
                raise
            _error(exc.message, exc.hint)
            sys.exit(exc.exit_code)
        except (OSError, MemoryError) as exc:  # the last line of defence: never a traceback
            if debug:
                raise
            _error(_describe(exc), "Set OLLAMA_TUNE_DEBUG=1 to see where it happened.")
            sys.exit(1)
    if caught.signal is not None:
        # typer turns a KeyboardInterrupt into exit 130 without a word: say what happened.
        what, how = _interrupts.describe(args, caught.signal)
        _error(what, how, label="Interrupted")
        sys.exit(_interrupts.exit_code(caught.signal))
    sys.exit(rv if isinstance(rv, int) else 0)


def _error(message: str, hint: str | None, label: str = "Error") -> None:
    from rich.markup import escape  # messages quote user text: "[/x]" is not markup

    err_console.print(f"[bold red]{label}:[/bold red] {escape(message)}", highlight=False)
    if hint:
        err_console.print(f"[yellow]Hint:[/yellow] {escape(hint)}", highlight=False)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory (an input far larger than expected?)"
    filename = getattr(exc, "filename", None)
    where = f": {filename}" if filename else ""
    return f"{getattr(exc, 'strerror', None) or exc}{where}"
