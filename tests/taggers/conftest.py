"""Shared tagger instances: model-backed taggers are set up once per test session."""

from __future__ import annotations

import pytest

from dolma_pipeline.tagger import TAGGERS, Tagger

_BUILT: dict[str, Tagger] = {}


def built_tagger(name: str) -> Tagger:
    if name not in _BUILT:
        tagger = TAGGERS.get(name)()
        tagger.setup()
        _BUILT[name] = tagger
    return _BUILT[name]


@pytest.fixture
def tagger_factory():
    return built_tagger
