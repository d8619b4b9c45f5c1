"""The bundled sample data sets (examples/*/train.jsonl, test.jsonl) and the example Modelfile
are well-formed, big enough, free of duplicates and test-set leaks, and carry their facts.

Standard library + pytest only, on purpose: these files are the project's first input, so
they are checked independently of the data loader that reads them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from difflib import SequenceMatcher
from itertools import combinations
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# data set -> (minimum train rows, minimum test rows), from issue 2.
MINIMUM_ROWS = {"customer-support": (120, 20), "tech-support": (40, 8), "sales": (30, 6)}
FILES = [(name, split) for name in MINIMUM_ROWS for split in ("train", "test")]
REQUIRED = {"instruction": str, "input": str, "output": str}
# Similarity (difflib ratio of normalised text) at or above which two texts count as the same.
NEAR_DUPLICATE_QUESTION = 0.9
TEST_LEAK = 0.8
NEAR_DUPLICATE_ANSWER = 0.9
MODELFILE = EXAMPLES / "customer-support" / "customer-support.modelfile"

_RANGE = re.compile(r"(?<=\d)\s*[〜~\-−–—‐]\s*(?=\d)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3})")
_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_POLITE_END = re.compile(r"(です|ます|ました|ません|ませ|ございます|ください|でしょう)か?$")


def norm(text: str) -> str:
    """NFKC, no whitespace, one range mark (5〜7 = 5～7 = 5-7), no thousands comma."""
    t = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))
    return _THOUSANDS.sub("", _RANGE.sub("~", t))


def question(row: dict) -> str:
    return norm(row["instruction"] + "\n" + row["input"])


def similar(a: str, b: str, threshold: float) -> bool:
    matcher = SequenceMatcher(None, a, b)
    # The cheap upper bounds rule out most pairs before the quadratic ratio().
    return matcher.real_quick_ratio() >= threshold and matcher.ratio() >= threshold


def load(name: str, split: str) -> list[dict]:
    path = EXAMPLES / name / f"{split}.jsonl"
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{path}:{lineno}: not JSON ({exc})")
        assert isinstance(row, dict), f"{path}:{lineno}: not an object"
        rows.append(row)
    return rows


def impolite_sentences(text: str) -> list[str]:
    """Prose sentences (code blocks aside) that do not end in a です・ます form."""
    bad = []
    for line in _CODE_BLOCK.sub("", text).splitlines():
        for sentence in re.split(r"(?<=[。！？!?])", line):
            s = sentence.strip().rstrip("。！？!?")
            if s and not _POLITE_END.search(s):
                bad.append(s)
    return bad


@pytest.mark.parametrize(("name", "split"), FILES)
def test_every_line_is_a_seed_row_with_the_required_keys(name: str, split: str) -> None:
    path = EXAMPLES / name / f"{split}.jsonl"
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), f"{path}: remove the UTF-8 BOM"
    assert raw.endswith(b"\n"), f"{path}: end the file with a newline"
    text = raw.decode("utf-8")
    assert not re.search(r"(?<!\\)\\u[0-9a-fA-F]{4}", text), f"{path}: write UTF-8, not \\u"
    allowed = set(REQUIRED) | ({"facts"} if split == "test" else set())
    for lineno, row in enumerate(load(name, split), 1):
        where = f"{path}:{lineno}"
        assert set(row) <= allowed, f"{where}: unexpected keys {set(row) - allowed}"
        for key, kind in REQUIRED.items():
            assert isinstance(row.get(key), kind), f"{where}: {key} must be a string"
        assert row["instruction"].strip(), f"{where}: empty instruction"
        assert row["output"].strip(), f"{where}: empty output"
        assert '"""' not in row["output"], (
            f"{where}: an Ollama Modelfile cannot carry triple quotes"
        )


@pytest.mark.parametrize("name", list(MINIMUM_ROWS))
def test_data_sets_meet_the_minimum_sizes(name: str) -> None:
    min_train, min_test = MINIMUM_ROWS[name]
    assert len(load(name, "train")) >= min_train
    assert len(load(name, "test")) >= min_test


@pytest.mark.parametrize("name", list(MINIMUM_ROWS))
def test_test_rows_carry_fact_groups_found_in_their_reference_answer(name: str) -> None:
    for lineno, row in enumerate(load(name, "test"), 1):
        facts = row.get("facts")
        where = f"{name}/test.jsonl:{lineno}"
        assert isinstance(facts, list) and facts, f"{where}: facts must be a non-empty list"
        for group in facts:
            assert isinstance(group, list) and group, f"{where}: each fact group is a list"
            assert all(isinstance(f, str) and f.strip() for f in group), where
            # One acceptable spelling of each fact is in the reference answer.
            assert any(norm(f) in norm(row["output"]) for f in group), f"{where}: {group}"


@pytest.mark.parametrize("name", list(MINIMUM_ROWS))
def test_questions_are_unique_within_train(name: str) -> None:
    questions = [question(r) for r in load(name, "train")]
    assert len(set(questions)) == len(questions), "exact duplicate question"
    near = [(a, b) for a, b in combinations(questions, 2) if similar(a, b, NEAR_DUPLICATE_QUESTION)]
    assert near == []


@pytest.mark.parametrize("name", list(MINIMUM_ROWS))
def test_test_questions_do_not_leak_from_train(name: str) -> None:
    train = [question(r) for r in load(name, "train")]
    train_instructions = {norm(r["instruction"]) for r in load(name, "train")}
    for row in load(name, "test"):
        assert norm(row["instruction"]) not in train_instructions, row["instruction"]
        leaks = [t for t in train if similar(question(row), t, TEST_LEAK)]
        assert leaks == [], row["instruction"]


@pytest.mark.parametrize("name", list(MINIMUM_ROWS))
def test_answers_are_not_repeated(name: str) -> None:
    answers = [norm(r["output"]) for r in load(name, "train")]
    assert len(set(answers)) == len(answers), "identical answers"
    near = [
        (a[:40], b[:40])
        for a, b in combinations(answers, 2)
        if similar(a, b, NEAR_DUPLICATE_ANSWER)
    ]
    assert near == []


@pytest.mark.parametrize(("name", "split"), FILES)
def test_answers_are_polite_japanese(name: str, split: str) -> None:
    bad = {}
    for row in load(name, split):
        if sentences := impolite_sentences(row["output"]):
            bad[row["instruction"]] = sentences
    assert bad == {}


@pytest.mark.parametrize("split", ["train", "test"])
def test_python_snippets_in_tech_support_answers_compile(split: str) -> None:
    """A fine-tuned model copies these snippets, so each must at least be valid Python."""
    snippets = [
        (row["instruction"], code)
        for row in load("tech-support", split)
        for code in re.findall(r"```python\n(.*?)```", row["output"], re.DOTALL)
    ]
    assert len(snippets) >= 5
    for where, code in snippets:
        compile(code, where, "exec")


def test_similarity_and_politeness_checks_can_fail() -> None:
    """The helpers the checks above rely on do flag what they are meant to flag."""
    assert similar(norm("送料はいくらですか？"), norm("送料はいくらですか"), TEST_LEAK)
    assert not similar(norm("送料はいくらですか？"), norm("パスワードを忘れました"), TEST_LEAK)
    assert impolite_sentences("返品できます。送料は550円だ。") == ["送料は550円だ"]
    assert impolite_sentences("次のとおりです。\n```python\nx = 1\n```") == []


# ---------------------------------------------------------------------------------------------
# The example Modelfile


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs; `\"\"\"…\"\"\"` values may span lines (Ollama's syntax)."""
    commands: list[tuple[str, str]] = []
    lines = iter(text.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, arg = line.partition(" ")
        if '"""' in arg:
            while arg.count('"""') < 2:
                arg += "\n" + next(lines)
            head, _, rest = arg.partition('"""')
            body, _, tail = rest.partition('"""')
            assert not tail.strip(), f"text after the closing quotes: {tail!r}"
            arg = head + body
        commands.append((keyword.upper(), arg))
    return commands


def test_modelfile_has_from_system_parameters_and_messages() -> None:
    commands = parse_modelfile(MODELFILE.read_text(encoding="utf-8"))
    by_kind: dict[str, list[str]] = {}
    for keyword, arg in commands:
        by_kind.setdefault(keyword, []).append(arg)
    assert by_kind["FROM"] == ["llama3.2:1b"]
    assert len(by_kind["SYSTEM"]) == 1 and "みどり商店オンライン" in by_kind["SYSTEM"][0]
    parameters = dict(arg.split(None, 1) for arg in by_kind["PARAMETER"])
    assert parameters == {"temperature": "0.7", "top_p": "0.9", "num_ctx": "4096"}
    assert set(by_kind) == {"FROM", "SYSTEM", "PARAMETER", "MESSAGE"}


def test_modelfile_few_shot_pairs_come_from_train() -> None:
    commands = parse_modelfile(MODELFILE.read_text(encoding="utf-8"))
    messages = [arg.split(" ", 1) for keyword, arg in commands if keyword == "MESSAGE"]
    roles = [role for role, _ in messages]
    assert 3 <= len(messages) // 2 <= 5
    assert roles == ["user", "assistant"] * (len(messages) // 2)
    train = {r["instruction"]: r for r in load("customer-support", "train")}
    for (_, user), (_, assistant) in zip(messages[::2], messages[1::2], strict=True):
        assert user in train, f"few-shot question not in train.jsonl: {user}"
        assert train[user]["input"] == "" and train[user]["output"] == assistant


def test_modelfile_parser_reads_multiline_values() -> None:
    text = 'FROM x\n# note\nSYSTEM """a\nb"""\nMESSAGE user """q"""\n'
    assert parse_modelfile(text) == [("FROM", "x"), ("SYSTEM", "a\nb"), ("MESSAGE", "user q")]
