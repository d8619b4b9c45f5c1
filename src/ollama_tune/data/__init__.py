"""The data stage: load and detect formats, validate, convert, split, stats.

Every supported input format becomes a list of `Example`s (a conversation plus where it came
from), which is what every later stage consumes.
"""

from ollama_tune.data.model import Example, Message, SourceRef

__all__ = ["Example", "Message", "SourceRef"]
