"""The base of every stage's settings model (`TrainSettings`, `ExportSettings`, …).

Each stage module owns the pydantic model of its settings; the recipe (`config.Recipe`)
composes them, the CLI's flags are checked against their fields and run.json records them
under the same names. This module holds only what they all share, so no stage imports another.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)


def _numeric(annotation: Any) -> bool:
    args = typing.get_args(annotation) or (annotation,)
    return any(a in (int, float) for a in args) and bool not in args


class Section(BaseModel):
    """A settings model: unknown keys are errors (a typo like `lora_rank` must not silently
    use the default) and numbers must be finite (`epochs: .inf` is never meant)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _bool_is_not_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML reads `true` as a boolean and pydantic would take it as 1.
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _numeric(field.annotation):
            raise ValueError(f"expected a number, got {str(value).lower()} (a YAML boolean)")
        return value


def check_host(value: str | None) -> str | None:
    """`host`, `host:port` or `http(s)://host:port`, as OLLAMA_HOST takes them."""
    if value is None:
        return None
    text = value.strip()
    candidate = text if "://" in text else f"http://{text}"
    try:
        parts = urlsplit(candidate)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise ValueError(f"malformed Ollama host {value!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"malformed Ollama host {value!r}: write HOST, HOST:PORT or http://HOST:PORT"
        )
    return value


Host = Annotated[str | None, AfterValidator(check_host)]


def flag(field: str) -> str:
    """The CLI flag of a settings field (`gradient_accumulation_steps` → `--gradient-…`)."""
    return "--" + field.replace("_", "-")


def flag_problems(exc: ValidationError) -> list[str]:
    """A settings model's validation errors as `--flag: what is wrong, got VALUE` lines."""
    lines = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:  # a check across fields names its flags itself
            lines.extend(msg.split("; "))
            continue
        name = flag(str(err["loc"][0]))
        got = err.get("input")
        shown = "" if err["type"] == "missing" or isinstance(got, dict) else f", got {got!r}"
        lines.append(f"{name}: {msg}{shown}")
    return lines


S = TypeVar("S", bound=Section)


def usage_error(exc: ValidationError, command: str, what: str | None = None) -> Exception:
    """A settings model's validation errors as the one UsageError a user sees."""
    from ollama_tune.errors import UsageError

    problems = "\n  ".join(flag_problems(exc))
    return UsageError(
        f"Invalid {what or command} settings:\n  {problems}",
        hint=f"Fix the values above; `ollama-tune {command} --help` lists every flag.",
    )


class UserConfig(Section):
    """A library input built from what a user gave (flags, a recipe): a bad value raises the
    stage's own error naming every flag, never a pydantic traceback. Mixed into the
    `*Config` models next to their stage's settings model."""

    command: ClassVar[str] = ""  # whose `--help` lists the flags
    what: ClassVar[str | None] = None  # "Invalid <what> settings" (default: the command)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise self.user_error(exc) from None

    @classmethod
    def user_error(cls, exc: ValidationError) -> Exception:
        return usage_error(exc, cls.command, cls.what)


def from_flags(model: type[S], command: str, **flags: Any) -> S:
    """`model` from a command's flags: a flag left out (None) takes the model's default; bad
    values raise one UsageError naming every flag."""
    try:
        return model(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise usage_error(exc, command) from None
