"""`dolma train-classifier` options: where the labels come from, the units, sampling, fastText's settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as _field
from typing import Literal

from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import Executor
from dolma_pipeline.reader import OnError

_LABEL = re.compile(r"^[^\s]+$")


@dataclass
class FieldLabels:
    """Labels from a field of each document: `source` or a dotted path such as `metadata.quality`."""

    field: str = ""  # metadata field holding the label
    map: dict[str, str] = _field(default_factory=dict)  # value -> label; empty: the value is the label


@dataclass
class AttributeLabels:
    """Labels from an attribute of each document by a threshold (to distil another tagger)."""

    name: str = ""  # the attribute key, e.g. exp__gopher_v1__word_count
    experiment: str = ""  # its directory, `attributes/<experiment>/`; default: the key's part before `__`
    threshold: float = 0.5  # score at which the attribute gives the positive label
    above: str = "pos"  # the label of documents whose score is >= threshold
    below: str = "neg"  # label of documents under the threshold
    reduce: Literal["first", "max", "min", "mean"] = "first"  # one number from the attribute's spans


@dataclass
class FastTextParams:
    """fastText's own hyperparameters, passed through unchanged (fastText's names)."""

    dim: int = 100  # vector size
    epoch: int = 5  # passes over the data
    lr: float = 0.1  # learning rate
    wordNgrams: int = 2  # Dolma's jigsaw and DCLM's classifiers use bigrams
    minCount: int = 1  # minimal word occurrences
    minCountLabel: int = 1  # minimal label occurrences
    minn: int = 0  # shortest character n-gram
    maxn: int = 0  # longest character n-gram
    bucket: int = 2_000_000  # hash buckets for n-grams
    loss: Literal["softmax", "hs", "ova", "ns"] = "softmax"  # softmax, ns, hs or ova
    ws: int = 5  # context window
    neg: int = 5  # negatives sampled
    lrUpdateRate: int = 100  # rate of learning-rate updates
    t: float = 1e-4  # sampling threshold
    thread: int = 1  # fastText is deterministic only with one thread
    seed: int = 0  # fastText's seed (byte-identical only with one thread)
    verbose: int = 0  # fastText's verbosity


@dataclass
class TrainClassifierConfig:
    """Options of `dolma train-classifier`; exactly one of `labels`, `label_field`, `label_attribute`."""

    labels: dict[str, list[str]] = _field(default_factory=dict)  # label -> document globs
    documents: list[str] = _field(default_factory=list)  # for label_field / label_attribute
    label_field: FieldLabels | None = None  # labels from a metadata field
    label_attribute: AttributeLabels | None = None  # labels from an attribute and a threshold (distil a tagger)
    mode: Literal["document", "paragraph", "sentence"] = "document"  # unit of text: document, paragraph or sentence
    output: str = ""  # directory: model.bin (or .ftz), model_card.json, pr_curve.png, work/
    validation_fraction: float = 0.1  # by a hash of the document id
    balance: bool = True  # sample every label down to the rarest one (deterministic)
    max_examples_per_label: int = 0  # 0: no cap
    min_length: int = 1  # characters of a prepared unit; shorter units are left out and counted
    seed: int = 0
    quantize: bool = False  # also write model.ftz (fastText's product quantisation) and evaluate that
    quantize_cutoff: int = 100_000  # keep the 100,000 rows of largest norm (0: all, slow and large)
    quantize_retrain: bool = False  # retrain while quantizing (fastText's qnorm/retrain)
    fasttext: FastTextParams = _field(default_factory=FastTextParams)  # fastText's hyperparameters, passed through
    shuffle_bucket_bytes: int = 64_000_000  # out-of-core shuffle: the most bytes sorted in memory at once
    processes: int = 1
    executor: Executor = "auto"  # auto | ray | local | serial: see dolma_pipeline.executor.choose_executor
    ray_address: str | None = None
    debug: bool = False
    ignore_existing: bool = False
    on_error: OnError = "fail"

    def validate(self) -> None:
        sources = [name for name, given in (("labels", bool(self.labels)), ("label_field", self.label_field),
                                            ("label_attribute", self.label_attribute)) if given]
        if len(sources) != 1:
            raise ConfigError("give exactly one label source: `labels` (label -> document globs), "
                              f"`label_field` or `label_attribute` (got {', '.join(sources) or 'none'})")
        if self.labels:
            if self.documents:
                raise ConfigError("`documents` goes with label_field / label_attribute; with `labels` each "
                                  "label names its own documents")
            if len(self.labels) < 2:
                raise ConfigError(f"a classifier needs at least two labels; `labels` has {list(self.labels)}")
            for label, globs in self.labels.items():
                if not globs:
                    raise ConfigError(f"label {label!r} has no documents")
        elif not self.documents:
            raise ConfigError("no documents given (--documents PATH_OR_GLOB ...) for the label source")
        if self.label_field is not None and not self.label_field.field:
            raise ConfigError("label_field.field is empty (e.g. source or metadata.quality)")
        if self.label_attribute is not None:
            attribute = self.label_attribute
            if not attribute.name:
                raise ConfigError("label_attribute.name is empty (e.g. exp__gopher_v1__word_count)")
            if attribute.above == attribute.below:
                raise ConfigError("label_attribute.above and .below must be different labels")
        for label in self.declared_labels():
            check_label(label)
        if not self.output:
            raise ConfigError("no output directory given (--output DIR)")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.processes < 1:
            raise ConfigError("processes must be at least 1")
        if self.max_examples_per_label < 0 or self.min_length < 0:
            raise ConfigError("max_examples_per_label and min_length must not be negative")

    def declared_labels(self) -> list[str]:
        if self.labels:
            return list(self.labels)
        if self.label_attribute is not None:
            return [self.label_attribute.above, self.label_attribute.below]
        if self.label_field is not None:
            return sorted(set(self.label_field.map.values()))
        return []


def check_label(label: str) -> str:
    """A label is one fastText token: non-empty, no whitespace."""
    if not isinstance(label, str) or not _LABEL.match(label):
        raise ConfigError(f"label {label!r} must be a non-empty word without whitespace")
    return label
