"""Shared tagger instances: model-backed taggers are set up once per test session."""

from __future__ import annotations

import pytest

from dolma_pipeline.tagger import TAGGERS, Tagger
from tests.taggers.catalogue_assets import options_for

_BUILT: dict[str, Tagger] = {}
_MODEL: str | None = None


def _classifier_model() -> str:
    """A tiny fastText classifier trained once on real text (standard-library docstrings vs. licence text)."""
    global _MODEL
    if _MODEL is None:
        import ast
        import sysconfig
        import tempfile

        from dolma_pipeline.classifier.fit import fit

        root = tempfile.mkdtemp(prefix="dolma-tagger-model-")
        with open(sysconfig.get_paths()["stdlib"] + "/json/decoder.py", encoding="utf-8") as fh:
            docs = [ast.get_docstring(n) for n in ast.walk(ast.parse(fh.read()))
                    if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        with open("/usr/share/common-licenses/Apache-2.0", encoding="utf-8") as fh:
            legal = [p for p in fh.read().split("\n\n") if p.strip()]
        with open(f"{root}/train.txt", "w", encoding="utf-8") as fh:
            for label, texts in (("docs", docs), ("legal", legal)):
                fh.writelines(f"__label__{label} {' '.join(t.split())}\n" for t in texts if t)
        fit(f"{root}/train.txt", f"{root}/model.bin", {"dim": 8, "bucket": 2000, "wordNgrams": 2, "thread": 1})
        _MODEL = f"{root}/model.bin"
    return _MODEL


def built_tagger(name: str) -> Tagger:
    if name not in _BUILT:
        from taggers.fasttext_classifier import FastTextClassifierTagger

        cls = TAGGERS.get(name)
        # classifier taggers need a model (their weights are not bundled); catalogue taggers their assets
        tagger = cls(model_path=_classifier_model()) if issubclass(cls, FastTextClassifierTagger) else cls(
            **options_for(name))
        tagger.setup()
        _BUILT[name] = tagger
    return _BUILT[name]


@pytest.fixture
def tagger_factory():
    return built_tagger
