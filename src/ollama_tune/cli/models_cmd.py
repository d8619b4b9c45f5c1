"""`ollama-tune list | show NAME | rm NAME | pull NAME | create SOURCE --name NAME`.

Mirrors `ollama list/show/rm/pull/create`, through the official client (`--host` or
OLLAMA_HOST). `create` takes a Modelfile or a bundle folder holding one; local FROM/ADAPTER
files are uploaded as blobs first.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ollama_tune.cli._options import HOST, JSON
from ollama_tune.errors import UsageError


def _service(host: str | None):  # type: ignore[no-untyped-def]
    from ollama_tune.cli._common import waiting_note
    from ollama_tune.ollama import OllamaService

    return OllamaService(host, progress=waiting_note)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1000  # type: ignore[assignment]
    return f"{n:.1f} TB"


def list_cmd(
    host: str | None = HOST,
    as_json: bool = JSON,
) -> None:
    """List the models on the Ollama server (like `ollama list`)."""
    from rich.table import Table

    from ollama_tune.cli._common import console, print_json

    models = _service(host).list()
    if as_json:
        print_json([m.__dict__ for m in models])
        return
    table = Table("NAME", "ID", "SIZE", "PARAMS", "QUANT", "MODIFIED")
    for m in models:
        table.add_row(
            m.name,
            (m.digest or "")[:12],
            _size(m.size),
            m.parameter_size or "",
            m.quantization or "",
            (m.modified_at or "")[:19],
        )
    console.print(table)


def show_cmd(
    name: str = typer.Argument(..., help="Model name, e.g. my-support-bot or llama3.2:1b."),
    modelfile: bool = typer.Option(False, "--modelfile", help="Print the Modelfile only."),
    host: str | None = HOST,
) -> None:
    """Show a model's details, parameters, system prompt and template (like `ollama show`)."""
    from rich.table import Table

    from ollama_tune.cli._common import console

    info = _service(host).show(name)
    if modelfile:
        console.print(info.modelfile or "", markup=False, highlight=False)
        return
    table = Table("field", "value", title=name, show_header=False)
    d = info.details
    for key, value in (
        ("family", d.family if d else None),
        ("parameters", d.parameter_size if d else None),
        ("quantization", d.quantization_level if d else None),
        ("options", info.parameters),
        ("template", info.template),
    ):
        if value:
            table.add_row(key, str(value))
    console.print(table)


def rm_cmd(
    name: str = typer.Argument(..., help="Model to delete."),
    host: str | None = HOST,
) -> None:
    """Delete a model from the Ollama server (like `ollama rm`)."""
    from ollama_tune.cli._common import console

    _service(host).delete(name)
    console.print(f"deleted '{name}'")


def pull_cmd(
    name: str = typer.Argument(..., help="Model to download, e.g. llama3.2:1b."),
    host: str | None = HOST,
) -> None:
    """Download a model into Ollama with a progress bar (like `ollama pull`)."""
    from ollama_tune.cli._common import console, progress_bar

    with progress_bar() as progress:
        _service(host).pull(name, progress)
    console.print(f"pulled '{name}'")


def create_cmd(
    source: Path = typer.Argument(..., help="A Modelfile, or a bundle folder with a Modelfile."),
    name: str = typer.Option(..., "--name", "-n", help="Name of the model to create."),
    quantize: str | None = typer.Option(
        None, "--quantize", "-q", help="Quantize an F16/F32 FROM model, e.g. q4_K_M."
    ),
    pull: bool = typer.Option(False, "--pull", help="Pull a FROM model name that is missing."),
    allow_outside: bool = typer.Option(
        False, "--allow-outside", help="Accept FROM/ADAPTER files outside the Modelfile's folder."
    ),
    host: str | None = HOST,
) -> None:
    """Create a model in Ollama from a Modelfile (files are uploaded as blobs first)."""
    from ollama_tune.cli._common import console, progress_bar
    from ollama_tune.modelfile import Modelfile

    path = source / "Modelfile" if source.is_dir() else source
    if not path.is_file():
        raise UsageError(f"no Modelfile at {path}", hint="Pass a Modelfile or a bundle folder.")
    mf = Modelfile.read(path)
    errors = [i for i in mf.lint(allow_outside=allow_outside) if i.severity == "error"]
    if errors:
        first = errors[0]
        raise UsageError(
            f"{path}:{first.line or '-'}: {first.message} ({len(errors)} error(s))",
            hint=f"Run `ollama-tune modelfile lint {path}` to see them all.",
        )
    service = _service(host)
    with progress_bar() as progress:
        base = mf.from_ or ""
        if pull and mf.local_file(base, path.parent) is None and not service.exists(base):
            service.pull(base, progress)
        result = service.create(name, mf, path.parent, quantize=quantize, progress=progress)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(
        f"created '{name}' ({len(result.uploaded)} file(s) uploaded, "
        f"{len(result.reused)} already on the server)"
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("list")(list_cmd)
    app.command("show")(show_cmd)
    app.command("rm")(rm_cmd)
    app.command("pull")(pull_cmd)
    app.command("create")(create_cmd)
