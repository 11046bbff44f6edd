"""Fixtures for the trainer tests (helpers live in train_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `import train_helpers` in any import mode

from train_helpers import byte_tokens, docstrings, small_config, write_tokens  # noqa: E402

from training.config import TrainConfig  # noqa: E402


@pytest.fixture(scope="session")
def token_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/part-0-0000{0,1}.npy`` and ``eval/part-0-00000.npy`` (byte-level, held-out docs last)."""
    root = tmp_path_factory.mktemp("tokens")
    texts = docstrings()
    cut = int(len(texts) * 0.9)
    train, held = byte_tokens(texts[:cut]), byte_tokens(texts[cut:])
    half = len(train) // 2
    write_tokens(root / "train" / "part-0-00000.npy", train[:half])
    write_tokens(root / "train" / "part-0-00001.npy", train[half:])
    write_tokens(root / "eval" / "part-0-00000.npy", held)
    return root


@pytest.fixture
def make_config(token_dir: Path, tmp_path: Path):
    def make(**sections: dict[str, Any]) -> TrainConfig:
        return small_config(token_dir, tmp_path / "run", **sections)

    return make

