"""`data convert`: any input format → seed or messages JSONL, losing no row.

Rows that cannot be converted (unparseable, invalid, or multi-turn when seed was asked for)
go to `OUT.rejected.jsonl` with the reason and source line, so read == written + rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ollama_tune._util import atomic_path
from ollama_tune.data.issues import Issue, Rejected
from ollama_tune.data.loader import PathLike, load_examples
from ollama_tune.data.model import SourceRef
from ollama_tune.data.paths import check_output_file, refuse_input_as_output
from ollama_tune.data.writer import STYLES, dumps, to_record
from ollama_tune.errors import UsageError


@dataclass
class ConvertConfig:
    inputs: list[PathLike]
    output: PathLike
    to: str = "seed"
    format: str | None = None
    encoding: str | None = None
    mapping: dict[str, str] | None = None


@dataclass
class ConvertResult:
    output: Path
    rejected_path: Path | None
    read: int
    written: int
    rejected: int
    issues: list[Issue] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "rejected_path": str(self.rejected_path) if self.rejected_path else None,
            "read": self.read,
            "written": self.written,
            "rejected": self.rejected,
            "formats": self.formats,
            "encodings": self.encodings,
        }


def rejected_path_for(output: PathLike) -> Path:
    out = Path(output)
    return out.with_name(f"{out.stem}.rejected.jsonl")


def convert_data(config: ConvertConfig) -> ConvertResult:
    if config.to not in STYLES:
        raise UsageError(f"unknown --to {config.to!r}", hint="use --to seed or --to messages")
    out = Path(config.output)
    rej_path = rejected_path_for(out)
    check_output_file(out, "output")
    refuse_input_as_output([out], config.inputs, "output")
    refuse_input_as_output([rej_path], config.inputs, "the rejected-rows file")
    load = load_examples(
        config.inputs, format=config.format, encoding=config.encoding, mapping=config.mapping
    )
    rejected: list[Rejected] = list(load.rejected)
    lines: list[str] = []
    for ex in load.examples:
        try:
            lines.append(dumps(to_record(ex, config.to)))
        except ValueError as exc:
            raw = dumps({"messages": ex.to_messages_dicts()})
            rejected.append(Rejected(ex.source, f"no-{config.to}-form: {exc}", raw))
    with atomic_path(out) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    issues = list(load.issues)
    if rejected:
        rejected.sort(key=lambda r: (r.source.path, r.source.line))
        with atomic_path(rej_path) as tmp:
            tmp.write_text("".join(dumps(r.to_dict()) + "\n" for r in rejected), encoding="utf-8")
    elif rej_path.exists():
        # Never delete what this run did not write; say that it is not from this run.
        issues.append(
            Issue(
                "warning",
                SourceRef(str(rej_path), 1),
                "stale-rejected",
                "this file is not from this run: no row was rejected this time",
                f"delete {rej_path} yourself if it is an old list of rejected rows",
            )
        )
    return ConvertResult(
        out,
        rej_path if rejected else None,
        load.rows_read,
        len(lines),
        len(rejected),
        issues,
        load.formats,
        load.encodings,
    )
