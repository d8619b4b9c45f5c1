"""`ollama-tune data augment IN OUT`: add reworded copies of each training question.

Thin: flags → `AugmentConfig` → `data.augment.augment_data` → a summary (or `--json`).
Registered on the `data` group next to check/convert/split/stats.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from ollama_tune.cli._options import JSON


def augment(
    inputs: list[Path] = typer.Argument(
        ..., help="Training data files, then the output file (last).", show_default=False
    ),
    n: int | None = typer.Option(None, "--n", help="Rewordings per question (default: 3)."),
    seed: int | None = typer.Option(
        None, "--seed", help="Same seed, same rewordings (default: 42)."
    ),
    teacher: str | None = typer.Option(
        None,
        "--teacher",
        help="A model that writes rewordings: ollama:NAME, a bundle dir or a .gguf "
        "(default: offline rules only).",
    ),
    exclude: list[Path] = typer.Option(
        [], "--exclude", help="Test file whose questions must never be produced (repeatable)."
    ),
    fmt: str | None = typer.Option(None, "--format", help="Input format (default: detect)."),
    as_json: bool = JSON,
) -> int:
    """Add N rewordings of each question (same answer and facts, marked augmented_from).

    Only augment the training split: the test questions stay as people wrote them. A
    rewording that loses a number, a name or a key word of the question is dropped.

    Example: ollama-tune data augment train.jsonl train.aug.jsonl --n 3 --exclude test.jsonl
    """
    from ollama_tune.cli._common import console, print_json, progress_bar
    from ollama_tune.data.augment import AugmentConfig, augment_data
    from ollama_tune.data.augment.settings import AugmentSettings
    from ollama_tune.errors import UsageError
    from ollama_tune.settings import from_flags

    if len(inputs) < 2:
        raise UsageError(
            "data augment needs an input file and an output file",
            hint="ollama-tune data augment train.jsonl train.aug.jsonl",
        )
    # The recipe's augment: model checks the flags; a flag left out takes its default.
    settings = from_flags(AugmentSettings, "data augment", n=n, seed=seed, teacher=teacher)
    config = AugmentConfig(
        inputs=inputs[:-1], output=inputs[-1], exclude=exclude, format=fmt,
        **settings.model_dump(exclude={"enabled"}),
    )  # fmt: skip
    with progress_bar("augmenting") as progress:
        result = augment_data(config, progress)
    if as_json:
        print_json(result.to_dict())
        return 0
    console.print(
        f"{result.read} rows + {result.added} rewordings ({result.method}) → {result.output} "
        f"({result.written} rows); dropped {len(result.dropped)} that lost key terms or "
        f"matched a test question",
        highlight=False,
        markup=False,
    )
    for s in result.skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(s.source)}: {escape(s.reason)}")
    if result.teacher_unreadable:
        console.print(
            f"[yellow]teacher[/yellow]: {result.teacher_unreadable} replies held no readable "
            "rewordings; rule-based ones were used for those rows",
            highlight=False,
        )
    if result.short:
        console.print(
            f"{len(result.short)} rows got fewer than {settings.n} rewordings "
            "(no safe rewrite found)",
            highlight=False,
        )
    return 0


def register(data_app: typer.Typer) -> None:
    """Attach `augment` to the `data` group."""
    data_app.command("augment")(augment)
