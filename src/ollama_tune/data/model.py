"""The one in-memory shape of a training/test row, shared by every pipeline stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a row came from, so every message about it can say `file:line`."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Example:
    """One conversation. The last assistant turn is the answer the model should learn/give.

    `facts` is optional evaluation data: a list of fact groups, each a list of acceptable
    strings (any one of them counts as the fact being present).
    """

    messages: tuple[Message, ...]
    source: SourceRef
    facts: tuple[tuple[str, ...], ...] | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def system(self) -> str | None:
        for m in self.messages:
            if m.role == "system":
                return m.content
        return None

    @property
    def answer_index(self) -> int:
        if self.messages and self.messages[-1].role == "assistant":
            return len(self.messages) - 1
        for i in range(len(self.messages) - 1, -1, -1):
            if self.messages[i].role == "assistant":
                return i
        raise ValueError(f"{self.source}: conversation has no assistant turn")

    @property
    def prompt_messages(self) -> tuple[Message, ...]:
        """Everything before the final assistant answer (what the model is asked)."""
        return self.messages[: self.answer_index]

    @property
    def answer(self) -> str:
        return self.messages[self.answer_index].content

    @property
    def question(self) -> str:
        """The last user turn before the answer (what a person would call 'the question')."""
        for m in reversed(self.prompt_messages):
            if m.role == "user":
                return m.content
        return ""

    def to_messages_dicts(self) -> list[dict[str, str]]:
        return [m.to_dict() for m in self.messages]
