"""`data augment`: several phrasings of each training question, so a model learns each fact
from more than one wording.

`augment_data(AugmentConfig)` reads the training rows, asks a teacher model for rewordings
(`teacher.py`, optional) and fills up with offline rule-based ones (`rules.py`), keeps a
rewording only when it kept the question's key terms (`terms.py`) and does not match a test
question (`exclude`), and writes every original row followed by its rewordings. Each added
row keeps the original answer and facts and says where it came from
(`"augmented_from": "train.jsonl:12"`), which `data split` uses to keep the family together.
"""

from ollama_tune.data.augment.run import (
    AugmentConfig,
    AugmentResult,
    Dropped,
    augment_data,
    augment_examples,
)
from ollama_tune.data.augment.terms import Synonyms, key_terms, missing_terms

__all__ = [
    "AugmentConfig",
    "AugmentResult",
    "Dropped",
    "Synonyms",
    "augment_data",
    "augment_examples",
    "key_terms",
    "missing_terms",
]
