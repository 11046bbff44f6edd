"""Build catalogue_docs.jsonl.gz: the real texts the Dolma-parity tests of the tagger catalogue run on.

    python tests/taggers/data/make_catalogue_docs.py [--corpus /tmp/dolma-corpus/dolma]

Documents (deterministic picks, each cut to at most 4,000 characters at a line end): English prose from the
shared corpus's `en` set, text in other languages from its `multilingual` set, source files of Python's
standard library and C headers of the system (with `metadata.ext`, as code taggers read), a few pages with
Creative Commons licence links in `metadata.html` and URLs in `metadata.url`, and edge cases (empty,
whitespace only, repetitions, punctuation-only paragraphs).
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_CHARS = 4000


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    end = text.rfind("\n", 0, MAX_CHARS)
    return text[: end + 1 if end > 0 else MAX_CHARS]


def _corpus_docs(pattern: str, every: int, limit: int) -> list[dict]:
    out: list[dict] = []
    for path in sorted(glob.glob(pattern))[:1]:
        with gzip.open(path, "rt") as f:
            for i, line in enumerate(f):  # the first file of each set: deterministic whatever the set's size
                if i % every == 0:
                    row = json.loads(line)
                    out.append({"id": row["id"], "text": _cut(row["text"]), "source": row.get("source", ""),
                                "metadata": {"lang": (row.get("metadata") or {}).get("lang")}})
                    if len(out) >= limit:
                        return out
    return out


def _code_docs() -> list[dict]:
    stdlib = sysconfig.get_paths()["stdlib"]
    files = sorted(glob.glob(os.path.join(stdlib, "*.py")))[::12][:30]
    files += sorted(glob.glob("/usr/include/*.h"))[::15][:12]
    out = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = _cut(f.read())
        ext = path.rsplit(".", 1)[1]
        out.append({"id": "code/" + os.path.basename(path), "text": text, "source": "code",
                    "metadata": {"ext": ext, "max_stars_count": len(text) % 50}})
    return out


EDGE_CASES = [
    "",
    "   \n\n\t ",
    "ha ha ha ha ha\nabcabcabcabcabc and more\n\n!!! ??? ...\n--- *** ---\n",
    "The same line.\nThe same line.\nThe same line.\nThe same line.\n",
    "Write to jane.doe@example.org or call (555) 123-4567; server 192.168.0.1 is down.\n",
    "token token token token token token token token token token\n" * 3,
    "\u2026 ellipsis line\u2026\n* bullet\n- dash\n\n\n\nend #tag",
    "\U0001f600\U0001f600 \u2600\u2601 !!!\n\u00bfQu\u00e9? \u00a1S\u00ed!\n",
]

PAGES = [
    ('<html><head><meta name="license" content="https://creativecommons.org/licenses/by-sa/4.0/deed.en"></head>'
     '<body><a rel="license" href="http://creativecommons.org/licenses/by-nc/3.0/">CC</a></body></html>',
     "https://www.example.com/articles/one?x=1"),
    ('<p>No licence here.</p><a href="https://creativecommons.org/publicdomain/zero/1.0/">CC0</a>',
     "http://blog.example.net/"),
    ("<div>plain page</div>", "https://news.example.co.uk:8080/path/to/page/"),
    ('<a href="https://creativecommons.org/licenses/by/2.0/fr/">by</a> and '
     '<a href="https://creativecommons.org/licenses/by-nd/4.0/">by-nd</a>', "ads.tracker.example/banner.js"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="/tmp/dolma-corpus/dolma")
    args = parser.parse_args()
    rows = _corpus_docs(os.path.join(args.corpus, "en/documents/*.jsonl.gz"), 71, 70)
    rows += _corpus_docs(os.path.join(args.corpus, "multilingual/documents/*.jsonl.gz"), 7, 40)
    rows += _code_docs()
    rows += [{"id": f"edge/{i}", "text": t, "source": "edge", "metadata": {}} for i, t in enumerate(EDGE_CASES)]
    for i, (html, url) in enumerate(PAGES):
        text = "Page text.\n" + html.replace("<", " <")
        rows.append({"id": f"page/{i}", "text": text, "source": "pages", "metadata": {"html": html, "url": url}})
    for row in rows:
        row["metadata"].setdefault("html", row["text"])
        row["metadata"].setdefault("url", "https://" + row["id"].replace("/", ".").strip(".") + ".example.com/")
    out = os.path.join(HERE, "catalogue_docs.jsonl.gz")
    with gzip.GzipFile(out, "wb", mtime=0) as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    print(f"{len(rows)} documents -> {out}")


if __name__ == "__main__":
    main()
