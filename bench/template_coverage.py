"""How many real chat templates convert to an Ollama TEMPLATE that renders byte for byte.

Every template of the corpus (`tests/data/templates/`, sources in `sources.json`) goes through
`convert_chat_template` and then the Go parity check (real `text/template`, one batched process
per template). Prints one line per template and the totals:

    python bench/template_coverage.py [--no-go] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from ollama_tune.errors import TemplateError
from ollama_tune.templates import check_parity, convert_chat_template, go_available

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "templates"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-go", action="store_true", help="skip the Go check (Python layout only)")
    ap.add_argument("--verbose", action="store_true", help="print every template's verdict")
    args = ap.parse_args()
    use_go = go_available() and not args.no_go
    sources = json.loads((CORPUS / "sources.json").read_text(encoding="utf-8"))
    verdicts: Counter[str] = Counter()
    refused: list[tuple[str, str]] = []
    for src in sources:
        text = (CORPUS / src["file"]).read_text(encoding="utf-8")
        bos, eos = src.get("bos_token"), src.get("eos_token")
        try:
            tmpl = convert_chat_template(text, bos_token=bos, eos_token=eos)
        except TemplateError as exc:
            verdicts["refused"] += 1
            refused.append((src["file"], exc.message))
            continue
        except Exception as exc:  # a crash is what this script exists to find
            verdicts["crashed"] += 1
            refused.append((src["file"], f"CRASH {type(exc).__name__}: {exc}"))
            continue
        if use_go:
            result = check_parity(text, tmpl, bos_token=bos, eos_token=eos)
            if not result.ok:
                verdicts["go differs"] += 1
                refused.append((src["file"], "GO DIFFERS " + result.summary().replace("\n", " | ")))
                continue
        verdicts["converted"] += 1
        if args.verbose:
            print(f"ok       {src['file']}: {tmpl.family}; {'; '.join(tmpl.notes)}")
    for name, why in refused:
        print(f"refused  {name}: {why}")
    total = len(sources)
    print(
        f"\n{verdicts['converted']}/{total} converted exactly"
        f"{' (checked with Go text/template)' if use_go else ' (Python layout check only)'}, "
        f"{verdicts['refused']} refused, {verdicts['go differs']} differ in Go, "
        f"{verdicts['crashed']} crashed"
    )
    return 1 if verdicts["crashed"] or verdicts["go differs"] else 0


if __name__ == "__main__":
    sys.exit(main())
