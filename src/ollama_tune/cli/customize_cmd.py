"""`ollama-tune customize`: a Modelfile with SYSTEM, parameters and diverse few-shot examples.

Writes the Modelfile first, then creates the model in Ollama (unless --no-create) and, with
--test, asks a few questions and shows each answer with tokens/s and why it stopped.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ollama_tune.cli._options import HOST


def customize_cmd(
    data: list[Path] = typer.Option(..., "--data", "-d", help="Q→A data file(s): JSONL/CSV."),
    base_model: str = typer.Option(..., "--base-model", "-b", help="Ollama model to start from."),
    model_name: str = typer.Option(..., "--model-name", "-n", help="Name of the new model."),
    system: str | None = typer.Option(None, "--system", help="System prompt TEXT or @FILE."),
    shots: int | None = typer.Option(
        None, "--shots", "-k", help="Few-shot example pairs to include (default: 3)."
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", help="PARAMETER temperature (default: 0.7)."
    ),
    top_p: float | None = typer.Option(
        None, "--top-p", "--top_p", help="PARAMETER top_p (default: 0.9)."
    ),
    num_ctx: int | None = typer.Option(
        None, "--num-ctx", help="PARAMETER num_ctx (default: computed from the token budget)."
    ),
    max_ctx: int | None = typer.Option(
        None, "--max-ctx", help="Largest num_ctx to choose by itself (default: 32768)."
    ),
    knowledge: bool | None = typer.Option(
        None, "--knowledge", help="Also put the whole FAQ into SYSTEM (when it fits)."
    ),
    tokenizer: Path | None = typer.Option(
        None, "--tokenizer", help="HF tokenizer folder for exact token counts."
    ),
    output: Path = typer.Option(Path("Modelfile"), "--output", "-o", help="Modelfile to write."),
    create: bool = typer.Option(True, "--create/--no-create", help="Create the model in Ollama."),
    pull: bool = typer.Option(False, "--pull", help="Pull the base model if it is missing."),
    test: bool = typer.Option(False, "--test", help="Ask test questions after creating."),
    questions: Path | None = typer.Option(
        None, "--questions", help="Questions for --test (.txt one per line, or a data file)."
    ),
    max_tokens: int = typer.Option(384, "--max-tokens", help="Answer length limit for --test."),
    test_questions: int | None = typer.Option(
        None,
        "--test-questions",
        help="Rows held out of the examples and the --knowledge block, asked by --test "
        "(default 3; 0 with --knowledge, so the knowledge block holds every row).",
    ),
    host: str | None = HOST,
) -> None:
    """Customize a base model with a system prompt and few-shot examples from your data."""
    from ollama_tune.cli._common import progress_bar
    from ollama_tune.customize import CustomizeRunConfig, customize, resolve_system
    from ollama_tune.prompt import CustomizeSettings
    from ollama_tune.settings import from_flags

    # The recipe's customize: model checks the flags; a flag left out takes its default.
    settings = from_flags(
        CustomizeSettings, "customize", system=resolve_system(system), shots=shots,
        temperature=temperature, top_p=top_p, num_ctx=num_ctx, knowledge=knowledge,
        max_ctx=max_ctx, tokenizer=tokenizer,
    )  # fmt: skip
    config = CustomizeRunConfig(
        data=data,
        base_model=base_model,
        model_name=model_name,
        output=output,
        create=create,
        pull=pull,
        host=host,
        test=test,
        questions=questions,
        **settings.prompt_settings(),
        max_tokens=max_tokens,
        test_questions=test_questions,
    )
    if create:
        with progress_bar() as progress:
            result = customize(config, progress)
    else:
        result = customize(config)
    _render(result)


def _render(result) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    from ollama_tune.cli._common import console

    b = result.build.budget
    for note in result.notes:
        console.print(f"[blue]note:[/blue] {note}", highlight=False, markup=False)
    for warning in result.build.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(
        f"Wrote [bold]{result.modelfile_path}[/bold]: {len(result.build.shots)} example pair(s), "
        f"num_ctx {b.num_ctx} (needs {b.total} tokens: SYSTEM {b.system}, examples {b.shots}, "
        f"question {b.question}, answer {b.answer}; {b.counted_with})",
        highlight=False,
    )
    held = result.build.held_out
    if held:
        where = ", ".join(str(e.source) for e in held)
        kept = "the examples and the knowledge block" if result.build.knowledge else "the examples"
        console.print(
            f"Held out {len(held)} row(s) as test questions, not in {kept}: {where} "
            "(set with --test-questions N)",
            highlight=False,
            markup=False,
        )
    if result.created:
        console.print(
            f"Created [bold]{result.model_name}[/bold] from {result.build.modelfile.from_} "
            f"on {result.host}",
            highlight=False,
        )
    else:
        console.print(f"Not created. To create it: {result.create_command}", highlight=False)
    if result.answers:
        table = Table("question", "answer", "tokens/s", "stopped", "tokens", title="--test")
        for a in result.answers:
            tps = f"{a.tokens_per_s:.1f}" if a.tokens_per_s else "-"
            stopped = "yes" if a.done_reason == "stop" else f"no ({a.done_reason})"
            table.add_row(a.question, a.answer, tps, stopped, str(a.eval_count or "-"))
        console.print(table)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("customize")(customize_cmd)
