"""fastText's supervised trainer (and quantiser), run in a child process: `python -m dolma_pipeline.classifier.fit`.

Why a child process: the fastText build on PyPI for numpy 2 (`fasttext-numpy2-wheel`, fastText's main
branch) initialises only `thread`/10 of the input matrix in `DenseMatrix::uniform`; the other rows keep
whatever `malloc` returned. Small matrices then start from heap garbage (NaN, or a different model each
run); large ones from fresh, zeroed pages. The child sets `GLIBC_TUNABLES=glibc.malloc.mmap_threshold`
low, so every matrix comes from fresh zeroed pages: the uninitialised rows are zeros, and one thread
gives the same model bytes every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from dolma_pipeline.errors import DolmaError

TUNABLES = "glibc.malloc.mmap_threshold=4096"


def fit(train_path: str, model_path: str, args: dict[str, Any], quantize: dict[str, Any] | None = None) -> None:
    """Train (and with `quantize`, also write `{model_path stem}.ftz`) in a child process; errors are DolmaErrors."""
    request = json.dumps({"train": train_path, "model": model_path, "args": args, "quantize": quantize})
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), TUNABLES]))
    result = subprocess.run([sys.executable, "-m", "dolma_pipeline.classifier.fit", request], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        hint = ""
        if "NaN" in message:
            hint = " (fastText diverged: try a lower lr, or more data per label)"
        raise DolmaError(f"fastText training on {train_path} failed: {message}{hint}")
    if result.stdout.strip():
        print(result.stdout.rstrip())


def _save(model: Any, path: str) -> None:
    partial = f"{path}.partial.{os.getpid()}"
    model.save_model(partial)
    os.replace(partial, path)


def main(argv: list[str]) -> int:
    import fasttext

    request = json.loads(argv[0])
    model = fasttext.train_supervised(input=request["train"], **request["args"])
    _save(model, request["model"])
    quantize = request.get("quantize")
    if quantize is not None:
        model.quantize(input=request["train"], **quantize)
        _save(model, os.path.splitext(request["model"])[0] + ".ftz")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
