"""Turn the hand-labelled markup in pii_snippets.src.txt into pii_snippets.jsonl (exact code-point spans).

    python tests/taggers/data/make_pii_snippets.py
"""

from __future__ import annotations

import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = re.compile(r"\[\[([EPI]):(.*?)\]\]")
TYPES = {"E": "EMAIL_ADDRESS", "P": "PHONE_NUMBER", "I": "IP_ADDRESS"}


def parse(line: str) -> tuple[str, dict[str, list[list[int]]]]:
    line = line.replace("\\n", "\n")
    text, spans, last = "", {t: [] for t in TYPES.values()}, 0
    for match in MARK.finditer(line):
        text += line[last : match.start()]
        start = len(text)
        text += match.group(2)
        spans[TYPES[match.group(1)]].append([start, len(text)])
        last = match.end()
    return text + line[last:], spans


def main() -> None:
    rows = []
    with open(os.path.join(HERE, "pii_snippets.src.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("# "):
                continue
            text, spans = parse(line)
            rows.append({"id": f"pii-{len(rows):03d}", "text": text, "spans": spans})
    with open(os.path.join(HERE, "pii_snippets.jsonl"), "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} snippets")


if __name__ == "__main__":
    main()
