"""One exception hierarchy for the whole package.

Every message says what was found and what was expected; `hint` says how to fix it. The CLI
turns these into a red message and an exit code; library code never prints or exits.
"""

from __future__ import annotations


class OllamaTuneError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"


class UsageError(OllamaTuneError):
    """The command line or a config/recipe value is wrong (exit 2)."""

    exit_code = 2


class DataError(OllamaTuneError):
    """The user's data cannot be read or used (exit 1)."""


class OutputError(OllamaTuneError):
    """An output file cannot be written: a folder in the way, no space, no permission (exit 1)."""


class ModelfileError(OllamaTuneError):
    """A Modelfile cannot be parsed, rendered or linted clean (exit 1)."""


class TemplateError(OllamaTuneError):
    """A chat template cannot be turned into an Ollama TEMPLATE that renders identically."""


class ModelError(OllamaTuneError):
    """A base model cannot be found, loaded or is of an unsupported architecture."""


class TrainingError(OllamaTuneError):
    """Training cannot start or failed."""


class ExportError(OllamaTuneError):
    """Merging, converting or quantizing failed."""


class EvaluationError(OllamaTuneError):
    """Evaluation could not run (bad test file, model reference, gate expression)."""


class GateFailed(OllamaTuneError):
    """An evaluation gate did not pass (exit 1)."""


class ExternalServiceError(OllamaTuneError):
    """Something outside ollama-tune failed: Ollama unreachable, a tool missing (exit 3)."""

    exit_code = 3


class OllamaError(ExternalServiceError):
    """The Ollama server is unreachable or answered with an error."""
