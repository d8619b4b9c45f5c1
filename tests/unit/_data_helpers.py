"""Small builders for the data-toolkit tests: realistic Japanese FAQ rows, written to disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOPICS = [
    ("返品の期限", "返品は商品到着後30日以内に承ります。マイページから申請してください。"),
    ("送料", "送料は全国一律550円です。5,000円以上のご注文で無料になります。"),
    ("支払い方法", "クレジットカード、コンビニ払い、銀行振込がご利用いただけます。"),
    ("ポイント", "ポイントはご購入金額100円につき1ポイント貯まります。"),
    ("配送日数", "ご注文から2〜4営業日でお届けします。離島は追加で日数がかかります。"),
    ("ギフト包装", "ギフト包装は1点につき300円で承っております。"),
    ("会員登録", "トップページの「新規会員登録」からメールアドレスでご登録いただけます。"),
    ("パスワード再設定", "ログイン画面の「パスワードをお忘れの方」から再設定できます。"),
    ("領収書", "領収書はマイページの注文履歴からPDFでダウンロードできます。"),
    ("キャンセル", "発送前であれば注文履歴からキャンセルできます。発送後は返品扱いになります。"),
    ("在庫", "在庫は商品ページに表示しております。入荷予定はお知らせメールでご案内します。"),
    ("交換", "サイズ交換は到着後14日以内に承ります。送料は当店が負担いたします。"),
]


def seed_rows(n: int = 12) -> list[dict[str, Any]]:
    """n distinct, clean seed rows (no duplicates, polite Japanese)."""
    rows = []
    for i in range(n):
        topic, answer = TOPICS[i % len(TOPICS)]
        rows.append(
            {
                "instruction": f"{topic}について教えてください（質問{i // len(TOPICS) + 1}）"
                f"{'。詳しくお願いします' * (i // len(TOPICS))}",
                "input": "",
                "output": answer if i < len(TOPICS) else f"{answer}（補足{i}：担当窓口{i}番）",
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
