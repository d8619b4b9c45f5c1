"""The data stage: load and detect formats, validate, convert, split, stats.

Every supported input format becomes a list of `Example`s (a conversation plus where it came
from), which is what every later stage consumes.
"""

from ollama_tune.data.checks import CheckConfig, CheckResult, validate_dataset
from ollama_tune.data.convert import ConvertConfig, ConvertResult, convert_data
from ollama_tune.data.issues import Issue, LoadResult, Rejected
from ollama_tune.data.loader import FORMATS, load_examples, parse_mapping, read_examples
from ollama_tune.data.model import Example, Message, SourceRef
from ollama_tune.data.split import SplitResult, split_examples, validation_split
from ollama_tune.data.stats import StatsResult, dataset_stats
from ollama_tune.data.writer import auto_style, write_jsonl

__all__ = [
    "FORMATS",
    "CheckConfig",
    "CheckResult",
    "ConvertConfig",
    "ConvertResult",
    "Example",
    "Issue",
    "LoadResult",
    "Message",
    "Rejected",
    "SourceRef",
    "SplitResult",
    "StatsResult",
    "auto_style",
    "convert_data",
    "dataset_stats",
    "load_examples",
    "parse_mapping",
    "read_examples",
    "split_examples",
    "validate_dataset",
    "validation_split",
    "write_jsonl",
]
