"""`dolma list`: every tagger with a one-line description."""

from __future__ import annotations

from dataclasses import dataclass, field

from dolma_pipeline.tag import list_taggers


@dataclass
class Config:
    tagger_modules: list[str] = field(default_factory=list)


def run(config: Config) -> int:
    print(list_taggers(config.tagger_modules))
    return 0
