"""`ollama-tune customize` end to end: data → Modelfile (written first) → Ollama → test answers.

The Modelfile is always written (atomically) before Ollama is contacted, so nothing is lost when
the server is down; the error then says which host was tried, how to start Ollama and the exact
`ollama create` command for the written file.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ollama_tune._util import ProgressFn, atomic_write_text
from ollama_tune.errors import OllamaError, UsageError
from ollama_tune.prompt import (
    CustomizeConfig,
    CustomizeResult,
    PromptSettings,
    build_customization,
)
from ollama_tune.settings import UserConfig

if TYPE_CHECKING:
    from ollama_tune.data.model import Example
    from ollama_tune.ollama import OllamaService


class CustomizeRunConfig(PromptSettings, UserConfig):
    """`ollama-tune customize`: the prompt settings plus where the data and the model go."""

    data: list[Path]
    base_model: str
    model_name: str
    output: Path = Path("Modelfile")
    create: bool = True
    pull: bool = False
    host: str | None = None
    test: bool = False
    questions: Path | None = None
    max_tokens: int = 384
    # Rows held out of the examples/knowledge as --test questions (None: 3, 0 with knowledge).
    test_questions: int | None = None
    command: ClassVar[str] = "customize"


@dataclass(frozen=True)
class TestAnswer:
    question: str
    expected: str | None
    answer: str
    done_reason: str | None
    tokens_per_s: float | None
    eval_count: int | None
    ttft_s: float | None
    total_s: float


@dataclass
class CustomizeRunResult:
    model_name: str
    build: CustomizeResult
    modelfile_path: Path
    created: bool
    host: str | None
    create_command: str
    answers: list[TestAnswer] = field(default_factory=list)
    # What loading normalised (e.g. whitespace Ollama would strip), shown as notes.
    notes: list[str] = field(default_factory=list)


def create_command(name: str, path: Path) -> str:
    return f"ollama create {shlex.quote(name)} -f {shlex.quote(str(path))}"


def customize(config: CustomizeRunConfig, progress: ProgressFn | None = None) -> CustomizeRunResult:
    """Build and write the Modelfile, then create (and optionally test) the model in Ollama."""
    from ollama_tune.data import load_examples
    from ollama_tune.data.loader import usable_examples
    from ollama_tune.data.paths import check_output_file, refuse_input_as_output

    check_output_file(config.output, "--output")
    refuse_input_as_output([config.output], config.data, "--output")
    load = load_examples(config.data if len(config.data) > 1 else config.data[0])
    examples = usable_examples(load)
    build = build_customization(
        CustomizeConfig(
            examples=examples,
            base_model=config.base_model,
            answer_tokens=config.max_tokens,
            holdout=config.test_questions,
            **config.prompt_settings(),
        )
    )
    path = atomic_write_text(config.output, build.modelfile.render()).resolve()
    command = create_command(config.model_name, path)
    result = CustomizeRunResult(config.model_name, build, path, False, None, command)
    result.notes = [f"{i.source}: {i.message}" for i in load.notes]
    if not config.create:
        return result
    from ollama_tune.ollama import OllamaService

    service = OllamaService(config.host, progress=progress)  # "waiting for Ollama" notes
    result.host = service.host
    try:
        _create(service, config, build, path, progress)
    except OllamaError as exc:
        raise OllamaError(
            f"{exc.message}\nThe Modelfile was written to {path}.",
            hint=f"{exc.hint or ''} Once Ollama runs, create the model with: {command}".strip(),
        ) from None
    result.created = True
    if config.test:
        result.answers = _ask(service, config, build, examples, progress)
    return result


def _create(
    service: OllamaService,
    config: CustomizeRunConfig,
    build: CustomizeResult,
    path: Path,
    progress: ProgressFn | None,
) -> None:
    if config.pull and not service.exists(config.base_model):
        service.pull(config.base_model, progress)
    build.modelfile.path = str(path)
    service.create(config.model_name, build.modelfile, path.parent, progress=progress)


def _ask(
    service: OllamaService,
    config: CustomizeRunConfig,
    build: CustomizeResult,
    examples: list[Example],
    progress: ProgressFn | None,
) -> list[TestAnswer]:
    from ollama_tune.prompt import load_questions, spread

    if config.questions is not None:
        pairs: list[tuple[str, str | None]] = [(q, None) for q in load_questions(config.questions)]
    else:
        # Nothing held out (--knowledge keeps every row): ask a few rows it knows.
        rows = build.held_out or spread(examples, 3)
        pairs = [(ex.question, ex.answer) for ex in rows]
    answers = []
    for i, (question, expected) in enumerate(pairs):
        if progress:
            progress("test questions", float(i), float(len(pairs)))
        reply = service.chat(
            config.model_name,
            [{"role": "user", "content": question}],
            {"num_predict": config.max_tokens},
        )
        answers.append(
            TestAnswer(
                question,
                expected,
                reply.text,
                reply.done_reason,
                reply.tokens_per_s,
                reply.eval_count,
                reply.ttft_s,
                reply.total_s,
            )
        )
    if progress:
        progress("test questions", float(len(pairs)), float(len(pairs)))
    return answers


def resolve_system(value: str | None) -> str | None:
    """--system TEXT or --system @FILE."""
    if value is None or not value.startswith("@"):
        return value
    path = Path(os.path.expanduser(value[1:]))
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(
            f"cannot read --system file {path}: {exc.strerror}", hint="Use --system @PATH."
        ) from None
