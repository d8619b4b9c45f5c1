"""The HTML report renders in a real browser: Debian's headless chromium takes a screenshot of
`report.html`, and the picture must hold the charts and tables (many colours, not blank)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ollama_tune.data.model import Example, Message, SourceRef
from ollama_tune.evaluate import EvalConfig, compare_models
from ollama_tune.report import write_report

pytestmark = pytest.mark.integration

ROWS = [
    (
        "返品はできますか？",
        "商品到着後30日以内なら返品できます。\n1. マイページ\n2. 返品申請",
        [["30日"]],
    ),
    ("送料は？", "5,000円以上のご注文は送料無料です。", [["5000円"], ["送料無料"]]),
]


@dataclass
class _Gen:
    text: str
    done_reason: str = "stop"
    prompt_tokens: int = 10
    completion_tokens: int = 20
    ttft_s: float = 0.1
    total_s: float = 0.8
    tokens_per_s: float = 40.0


class _Model:
    def __init__(self, ref: str) -> None:
        self.name = ref

    def generate(self, messages: list[dict[str, str]], options: object) -> _Gen:
        q = messages[-1]["content"]
        if self.name == "tuned":
            return _Gen(next(a for qq, a, _ in ROWS if qq == q), total_s=1.2)
        return _Gen('Sorry, I <b>cannot</b> help & "quote"', done_reason="length", total_s=2.5)

    def close(self) -> None:
        pass


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("chromium is not installed: apt-get install -y chromium")


def test_report_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    examples = [
        Example((Message("user", q), Message("assistant", a)), SourceRef("t.jsonl", i),
                tuple(tuple(g) for g in f))
        for i, (q, a, f) in enumerate(ROWS, start=1)
    ]  # fmt: skip
    config = EvalConfig(models={"base": "base", "tuned": "tuned"}, examples=examples)
    result = compare_models(config, open_model=_Model)
    html = write_report(result, tmp_path / "report").html

    shot = tmp_path / "shot.png"
    cmd = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
        "--window-size=1280,2000", html.resolve().as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]

    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 2000)
    colours = img.getcolors(maxcolors=1 << 20) or []
    # A blank or error page has a handful of colours; tables, bars and text have hundreds.
    assert len(colours) > 200, len(colours)
    white = sum(n for n, rgb in colours if rgb == (255, 255, 255))
    assert white < 0.9 * img.size[0] * img.size[1]
    # The bar chart's default matplotlib blue (#1f77b4) is on the page, i.e. the PNG decoded.
    assert any(
        abs(r - 0x1F) < 8 and abs(g - 0x77) < 8 and abs(b - 0xB4) < 8 for _, (r, g, b) in colours
    )
