"""`dolma tag`."""

from dolma_pipeline.tag import TagConfig as Config
from dolma_pipeline.tag import run

__all__ = ["Config", "run"]
