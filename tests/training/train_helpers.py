"""Helpers for the trainer tests: token files from real text, and small run configs."""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from training.config import TrainConfig, config_from_dict

REPO = Path(__file__).resolve().parents[2]
BYTE_EOS = 256  # byte-level scheme: ids 0..255 are bytes, 256 ends a document
BYTE_VOCAB = 257
OLMO_TOKENIZER = "allenai_gpt-neox-olmo-dolma-v1_5.json"


def docstrings() -> list[str]:
    """Human-written text shipped with Python: the docstrings of a few stdlib modules."""
    import argparse
    import collections
    import email
    import http
    import json
    import logging
    import typing

    texts = []
    with warnings.catch_warnings():  # typing.io / typing.re warn when touched
        warnings.simplefilter("ignore", DeprecationWarning)
        for mod in (argparse, collections, email, http, json, logging, typing, os, inspect):
            for _, obj in inspect.getmembers(mod):
                doc = inspect.getdoc(obj)
                if doc and len(doc) > 40:
                    texts.append(doc)
    return texts


def write_tokens(path: Path, ids: np.ndarray, dtype: str = "uint16") -> Path:
    """A raw, header-less little-endian token file, as the tokenize stage writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.asarray(ids).astype(np.dtype(dtype).newbyteorder("<")).tofile(path)
    return path


def byte_tokens(texts: list[str]) -> np.ndarray:
    out: list[int] = []
    for t in texts:
        out.extend(t.encode())
        out.append(BYTE_EOS)
    return np.array(out, dtype=np.uint16)


def olmo_tokenizer_path() -> Path:
    """The OLMo tokenizer file through the project's own asset cache (`$DOLMA_CACHE`), fetched and checked
    against its recorded SHA-256 on first use, as `make test` does: the test never depends on a stray copy."""
    from dolma_pipeline.assets import asset_path

    return Path(asset_path(OLMO_TOKENIZER))


def small_config(token_dir: Path, save_folder: Path, **sections: dict[str, Any]) -> TrainConfig:
    """A tiny byte-level run; ``sections`` update the config's sections (``trainer={...}``)."""
    data: dict[str, Any] = {
        "run_name": "test",
        "model": {"preset": "tiny", "vocab_size": BYTE_VOCAB, "max_sequence_length": 64},
        "tokenizer": {"eos_token_id": BYTE_EOS},
        "data": {
            "train": [{"label": "docs", "paths": [str(token_dir / "train" / "part-*.npy")]}],
            "eval": [{"label": "heldout", "paths": [str(token_dir / "eval" / "part-*.npy")]}],
            "sequence_length": 64,
        },
        "optim": {"lr": 3e-3},
        "scheduler": {"warmup_steps": 5},
        "trainer": {"max_steps": 10, "global_batch_size": 8, "micro_batch_size": 4, "precision": "fp32",
                    "device": "cpu", "log_interval": 1000, "eval_max_batches": 4},
        "checkpoint": {"save_folder": str(save_folder), "save_interval": 0, "keep_last": 2},
        "metrics": {"plot": False},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return config_from_dict(data)


PYTHON = sys.executable


def byte_tokenizer_file(path: Path) -> Path:
    """A real ``tokenizers`` JSON whose ids are UTF-8 byte values and whose EOS is 256, so it encodes text
    exactly as :func:`byte_tokens` does (a byte-level BPE with no merges)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):  # GPT-2's byte -> printable character map
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    vocab = {chr(c): b for b, c in zip(bs, cs, strict=True)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path
