"""`ollama-tune data check / convert / split / stats`: the data toolkit.

Thin commands: parse flags, call one `ollama_tune.data` function, render its result with rich
(or `--json`). Nothing heavy is imported here: `data check` stays instant unless `--tokenizer`
asks for a real tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup
from typer.exceptions import TyperException

from ollama_tune.cli._common import console, print_json
from ollama_tune.cli._options import JSON
from ollama_tune.errors import OllamaTuneError, UsageError

if TYPE_CHECKING:
    from ollama_tune.data.issues import Issue
    from ollama_tune.data.stats import StatsResult


class _DataGroup(TyperGroup):
    """Turns flag-parsing errors of `data` commands into `UsageError` (exit 2).

    typer >= 0.29 vendors click, so its parse errors are not `click.ClickException`s and the
    root `main()` would show a traceback and exit 1; translating here keeps exit code 2.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args:
            # `ollama-tune data` alone: show the commands (exit 2, as click does).
            console.print(self.get_help(ctx), highlight=False)
            raise typer.Exit(2)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TyperException as exc:
            code = getattr(exc, "exit_code", None)
            if code is None or not hasattr(exc, "format_message"):
                raise
            hint = "see `ollama-tune data --help` and `ollama-tune data COMMAND --help`"
            err: OllamaTuneError = (
                UsageError(exc.format_message(), hint=hint)
                if code == 2
                else OllamaTuneError(exc.format_message())
            )
            raise err from None


data_app = typer.Typer(
    cls=_DataGroup,
    help="Check, convert, split and describe question→answer data (JSONL, JSON, CSV/TSV).",
    no_args_is_help=True,
)

FILES = typer.Argument(..., help="Data files: JSONL, JSON array, CSV or TSV.", show_default=False)
FORMAT = typer.Option(
    None,
    "--format",
    help="seed, messages, sharegpt, prompt-completion, text, jsonl, json, csv or tsv "
    "(default: detect, row by row).",
)
ENCODING = typer.Option(None, "--encoding", help="e.g. utf-8, cp932, utf-16 (default: detect).")
MAP = typer.Option(
    None,
    "--map",
    help="Column names → fields, e.g. question=instruction,context=input,answer=output.",
)


class _ReadOpts(TypedDict):
    format: str | None
    encoding: str | None
    mapping: dict[str, str] | None


def _read_opts(fmt: str | None, encoding: str | None, mapping: str | None) -> _ReadOpts:
    from ollama_tune.data.encoding import check_encoding_name
    from ollama_tune.data.loader import check_format_name, parse_mapping

    check_format_name(fmt)
    if encoding:
        check_encoding_name(encoding)
    return {"format": fmt, "encoding": encoding, "mapping": parse_mapping(mapping)}


def _issue_table(issues: list[Issue], title: str) -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("where", style="cyan", no_wrap=True)
    table.add_column("severity")
    table.add_column("code", style="magenta", no_wrap=True)
    table.add_column("problem")
    table.add_column("how to fix", style="dim")
    for i in issues:
        colour = {"error": "red", "warning": "yellow"}.get(i.severity, "blue")
        sev = f"[{colour}]{i.severity}[/{colour}]"
        # Text(), not markup: messages quote the user's data, which may contain [brackets].
        table.add_row(Text(str(i.source)), sev, i.code, Text(i.message), Text(i.hint))
    return table


# Beyond this many, a table is noise: `data check --json` lists them all.
_MAX_SHOWN = 50


def _print_issues(issues: list[Issue], title: str) -> None:
    if not issues:
        return
    from ollama_tune.data.issues import sort_issues

    shown = sort_issues(issues)
    console.print(_issue_table(shown[:_MAX_SHOWN], title))
    if len(shown) > _MAX_SHOWN:
        console.print(
            f"… and {len(shown) - _MAX_SHOWN} more (`ollama-tune data check FILE --json` "
            "lists every one)",
            highlight=False,
            markup=False,
        )


# Up to this many, `data check` shows every issue; beyond, counts by code and the first ones.
_MAX_TABLE = 200


def _print_check_issues(issues: list[Issue]) -> None:
    if len(issues) <= _MAX_TABLE:
        if issues:
            console.print(_issue_table(issues, "data check"))
        return
    from collections import Counter

    from ollama_tune.data.issues import SEVERITIES as order

    # A table of thousands of rows is unreadable (and takes seconds to draw): summarise.
    counts = Counter((i.severity, i.code) for i in issues)
    summary = Table(title=f"data check: {len(issues)} issues by kind", expand=False)
    for name in ("severity", "code", "rows"):
        summary.add_column(name, justify="right" if name == "rows" else "left")
    for (sev, code), n in sorted(counts.items(), key=lambda kv: (order.index(kv[0][0]), -kv[1])):
        summary.add_row(sev, code, str(n))
    console.print(summary)
    first = sorted(issues, key=lambda i: order.index(i.severity))[:_MAX_SHOWN]
    console.print(_issue_table(first, f"the first {len(first)} (errors first)"))
    console.print(
        f"… and {len(issues) - len(first)} more (`ollama-tune data check FILE --json` "
        "lists every one)",
        highlight=False,
        markup=False,
    )


@data_app.command("check")
def check(
    files: list[Path] = FILES,
    fmt: str | None = FORMAT,
    encoding: str | None = ENCODING,
    mapping: str | None = MAP,
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors."),
    max_tokens: int = typer.Option(2048, "--max-tokens", help="Longest row, in tokens."),
    tokenizer: Path | None = typer.Option(
        None, "--tokenizer", help="HF tokenizer folder of the target model (else an estimate)."
    ),
    as_json: bool = JSON,
) -> int:
    """Report every problem in the data with file:line, severity and a fix hint."""
    from ollama_tune.data.checks import CheckConfig, validate_dataset

    if max_tokens < 1:
        raise UsageError(
            f"--max-tokens must be positive, got {max_tokens}", hint="e.g. --max-tokens 2048"
        )
    opts = _read_opts(fmt, encoding, mapping)
    config = CheckConfig(
        paths=files, max_tokens=max_tokens, tokenizer=tokenizer, strict=strict, **opts
    )
    result = validate_dataset(config)
    if as_json:
        print_json(result.to_dict())
        return 0 if result.ok else 1
    _print_check_issues(result.issues)
    colour = "green" if result.ok else "red"
    console.print(
        f"[{colour}]{len(result.errors)} error(s), {len(result.warnings)} warning(s)[/{colour}] — "
        f"{result.load.rows_read} rows read, {len(result.load.examples)} usable "
        f"({escape(', '.join(f'{k}: {v}' for k, v in result.load.formats.items()))})",
        highlight=False,
    )
    return 0 if result.ok else 1


@data_app.command("convert")
def convert(
    src: list[Path] = typer.Argument(
        ..., help="Input file(s), then the output .jsonl.", show_default=False
    ),
    to: str = typer.Option("seed", "--to", help="seed ({instruction,input,output}) or messages."),
    fmt: str | None = FORMAT,
    encoding: str | None = ENCODING,
    mapping: str | None = MAP,
    as_json: bool = JSON,
) -> int:
    """Convert any input format to seed or messages JSONL; bad rows go to OUT.rejected.jsonl.

    Exits 1 when some rows were rejected (read = written + rejected).
    """
    from ollama_tune.data.convert import ConvertConfig, convert_data

    if len(src) < 2:
        raise UsageError(
            "data convert needs an input and an output file",
            hint="ollama-tune data convert IN.csv OUT.jsonl",
        )
    if to not in ("seed", "messages"):
        raise UsageError(f"unknown --to {to!r}", hint="use --to seed or --to messages")
    *inputs, output = src
    result = convert_data(
        ConvertConfig(list(inputs), output, to, **_read_opts(fmt, encoding, mapping))
    )
    if as_json:
        print_json({**result.to_dict(), "issues": [i.to_dict() for i in result.issues]})
    else:
        _print_issues(result.issues, "data convert")
        console.print(
            f"read {result.read}, written {result.written} → {result.output}, "
            f"rejected {result.rejected}"
            + (f" → {result.rejected_path}" if result.rejected_path else ""),
            highlight=False,
            markup=False,
        )
    return 0 if result.rejected == 0 else 1


@data_app.command("split")
def split(
    files: list[Path] = FILES,
    out: Path = typer.Option(..., "--out", help="Folder for train.jsonl and test.jsonl."),
    seed: int = typer.Option(42, "--seed", help="Shuffle seed (same seed, same split)."),
    test_ratio: float = typer.Option(0.15, "--test-ratio", help="Share of rows in test.jsonl."),
    fmt: str | None = FORMAT,
    encoding: str | None = ENCODING,
    mapping: str | None = MAP,
    as_json: bool = JSON,
) -> int:
    """Split deterministically into train/test, keeping near-duplicates on the same side."""
    from ollama_tune._util import atomic_group
    from ollama_tune.data import auto_style, read_examples, split_examples, write_jsonl

    if not 0.0 < test_ratio < 1.0:
        raise UsageError(
            f"--test-ratio must be between 0 and 1, got {test_ratio}", hint="e.g. --test-ratio 0.15"
        )
    from ollama_tune.data.paths import check_output_dir, refuse_input_as_output

    check_output_dir(out, "--out")
    refuse_input_as_output([out / "train.jsonl", out / "test.jsonl"], files, "--out")
    examples = read_examples(files, **_read_opts(fmt, encoding, mapping))
    result = split_examples(examples, test_ratio=test_ratio, seed=seed)
    style = auto_style(examples)
    # Both files or neither: a full disk must not leave train.jsonl without test.jsonl.
    with atomic_group([out / "train.jsonl", out / "test.jsonl"]) as (train_tmp, test_tmp):
        write_jsonl(result.train, train_tmp, style=style)
        write_jsonl(result.test, test_tmp, style=style)
    summary = {
        "train": len(result.train),
        "test": len(result.test),
        "groups": result.groups,
        "style": style,
        "out": str(out),
    }
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"train {len(result.train)} → {out / 'train.jsonl'}, test {len(result.test)} → "
            f"{out / 'test.jsonl'} ({result.groups} groups of near-duplicates kept together)",
            highlight=False,
            markup=False,
        )
    return 0


@data_app.command("stats")
def stats(
    files: list[Path] = FILES,
    fmt: str | None = FORMAT,
    encoding: str | None = ENCODING,
    mapping: str | None = MAP,
    tokenizer: Path | None = typer.Option(
        None, "--tokenizer", help="HF tokenizer folder (else an estimate)."
    ),
    as_json: bool = JSON,
) -> int:
    """Rows, turns, token lengths (with a histogram), languages and duplicate groups."""
    from ollama_tune.data import dataset_stats, load_examples
    from ollama_tune.data.tokens import tokenizer_counter

    load = load_examples(files, **_read_opts(fmt, encoding, mapping))
    result = dataset_stats(load.examples, tokenizer_counter(tokenizer) if tokenizer else None)
    if as_json:
        print_json({**result.to_dict(), "rejected_rows": len(load.rejected)})
        return 0
    _render_stats(result, len(load.rejected))
    return 0


def _render_stats(result: StatsResult, rejected: int) -> None:
    table = Table(title="data stats")
    table.add_column("measure")
    for col in ("min", "mean", "median", "p95", "max"):
        table.add_column(col, justify="right")
    unit = "tokens (estimated)" if result.tokens_estimated else "tokens"
    for name, summary in (("turns per row", result.turns), (unit, result.tokens)):
        table.add_row(name, *(str(summary[c]) for c in ("min", "mean", "median", "p95", "max")))
    console.print(table)
    langs = ", ".join(f"{k} {v}" for k, v in result.languages.items())
    console.print(
        f"rows {result.rows} (rejected {rejected}), with system {result.with_system}, "
        f"with facts {result.with_facts}; answer languages: {langs}",
        highlight=False,
    )
    peak = max((n for _, _, n in result.histogram), default=1) or 1
    for lo, hi, n in result.histogram:
        console.print(
            f"{lo:>6}–{hi:<6} [green]{'█' * round(30 * n / peak)}[/green] {n}", highlight=False
        )
    for group in result.duplicate_groups:
        console.print(f"[yellow]duplicates:[/yellow] {escape(', '.join(group))}", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach `data` and its commands to the root app."""
    app.add_typer(data_app, name="data")
