"""`dolma decontaminate` configuration: Dolma's dedupe keys where the concept is the same.

```yaml
documents: [ROOT/documents/**/*.jsonl.gz]        # the training documents to check
evaluation:                                      # one or more evaluation sets (local or s3://)
  - {name: paloma, documents: ["s3://bucket/paloma/**/*.jsonl.gz"]}
dedupe:
  name: decontamination                          # attribute directory: ROOT/attributes/decontamination/
  paragraphs: {attribute_name: bff_duplicate_paragraph_spans_decontamination, min_words: 13}
  ngrams: {attribute_name: decontamination_ngram_spans, n: 13, max_document_frequency: 10}
  skip_empty: true
bloom_filter: {desired_false_positive_rate: 1.0e-15}   # optional: a Bloom filter instead of the exact index
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import Executor
from dolma_pipeline.reader import ON_ERROR_CHOICES
from dolma_pipeline.safety import check_name

MAX_EVAL_SETS = 64  # a set is one bit of a 64-bit mask in the index
_SET_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class EvalSetConfig:
    """One evaluation set: a name (an attribute key part) and its Dolma documents."""

    name: str = ""  # the evaluation set's name (in attributes and the summary)
    documents: list[str] = field(default_factory=list)  # its documents: paths or globs


@dataclass
class NormalizeConfig:
    """What is ignored when paragraphs are compared (all on by default; see docs/decontaminate.md)."""

    nfc: bool = True  # Unicode canonical composition (NFD and NFC spellings match)
    case: bool = True  # full case folding
    whitespace: bool = True  # runs of whitespace inside a paragraph count as one space
    punctuation: bool = True  # characters other than letters and digits at either end of a paragraph are ignored


@dataclass
class ParagraphsConfig:
    """Paragraph mode (Dolma/Paloma): evaluation paragraphs of at least `min_words` uniseg words."""

    attribute_name: str | None = None  # attribute key of contaminated paragraph spans
    paragraph_separator: str = "\n"  # text that separates paragraphs
    min_words: int = 13  # counted on the raw paragraph exactly as Dolma's uniseg_length_paragraphs_v1 does


@dataclass
class NgramsConfig:
    """N-gram mode (GPT-3 / NeMo Curator): documents sharing a word `n`-gram with an evaluation document."""

    attribute_name: str | None = None  # attribute key of overlapping spans
    n: int = 13  # words per n-gram
    # an evaluation n-gram found in more training documents than this is common text, not contamination,
    # and is ignored (GPT-3, NeMo Curator's max_matches); 0 = no cap
    max_document_frequency: int = 10


@dataclass
class DecontaminateSection:
    """Dolma's `dedupe` block: `name`, `paragraphs`, `skip_empty`; plus `ngrams` and `normalize`."""

    name: str = ""  # names the attribute directory (attributes/<name>)
    paragraphs: ParagraphsConfig | None = None  # paragraph mode (Dolma/Paloma)
    ngrams: NgramsConfig | None = None  # n-gram mode (GPT-3 / NeMo)
    skip_empty: bool = True  # empty paragraphs are never evaluation text, so they are never flagged either way
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)  # text normalisation before matching
    document_dir: str = "documents"  # the path component that holds documents

    def validate(self) -> None:
        if not self.name:
            raise ConfigError("dedupe.name is required (it names the attribute directory)")
        check_name(self.name, "dedupe.name")
        if self.paragraphs is None and self.ngrams is None:
            raise ConfigError("decontaminate needs dedupe.paragraphs, dedupe.ngrams or both")
        if self.paragraphs is not None:
            if not self.paragraphs.attribute_name:
                raise ConfigError("dedupe.paragraphs.attribute_name is required")
            if not self.paragraphs.paragraph_separator:
                raise ConfigError("dedupe.paragraphs.paragraph_separator must not be empty")
            if self.paragraphs.min_words < 1:
                raise ConfigError("dedupe.paragraphs.min_words must be at least 1")
        if self.ngrams is not None:
            if not self.ngrams.attribute_name:
                raise ConfigError("dedupe.ngrams.attribute_name is required")
            if self.ngrams.n < 1:
                raise ConfigError("dedupe.ngrams.n must be at least 1")
            if self.ngrams.max_document_frequency < 0:
                raise ConfigError("dedupe.ngrams.max_document_frequency must not be negative (0: no cap)")
        if self.paragraphs and self.ngrams and self.paragraphs.attribute_name == self.ngrams.attribute_name:
            raise ConfigError("dedupe.paragraphs.attribute_name and dedupe.ngrams.attribute_name must differ")


@dataclass
class BloomFilterConfig:
    """Dolma's `bloom_filter` block. Present: a Bloom filter per evaluation set instead of the exact index.

    The filter is sized for `desired_false_positive_rate` at the actual number of evaluation items
    (`estimated_doc_count` is used when larger), or to `size_in_bytes` when that is given; the false
    positive rate it really has once filled is stated in the summary. `file` keeps the filters for a
    later run; with `read_only: true` they are loaded from `file` and no evaluation set is read.
    """

    file: str | None = None  # the Bloom filter file
    read_only: bool = False  # only probe the filter, never add to it
    estimated_doc_count: int = 0  # expected number of entries (sizes the filter)
    desired_false_positive_rate: float = 1e-15  # target false-positive rate
    size_in_bytes: int = 0  # filter size (0: from the count and the rate)

    def validate(self) -> None:
        if not 0.0 < self.desired_false_positive_rate < 1.0:
            raise ConfigError("bloom_filter.desired_false_positive_rate must lie in (0, 1)")
        if self.size_in_bytes < 0 or self.estimated_doc_count < 0:
            raise ConfigError("bloom_filter.size_in_bytes and estimated_doc_count must not be negative")
        if self.read_only and not self.file:
            raise ConfigError("bloom_filter.read_only needs bloom_filter.file (the filters to load)")


@dataclass
class DecontaminateConfig:
    """`dolma decontaminate` options."""

    documents: list[str] = field(default_factory=list)  # training documents to check
    evaluation: list[EvalSetConfig] = field(default_factory=list)  # evaluation sets whose text must not be in the training documents
    dedupe: DecontaminateSection = field(default_factory=DecontaminateSection)  # what to match and how (Dolma's dedupe block)
    bloom_filter: BloomFilterConfig | None = None  # use a Bloom filter (approximate) instead of the exact index
    processes: int = 1
    work_dir: str | None = None  # the index and intermediate files; default <root>/decontaminate_work/<name>
    destination: str | None = None  # attribute directory instead of <root>/attributes/<name>
    keep_work_dir: bool = False
    on_error: str = "fail"
    batch_size: int = 512  # training documents probed together
    ray_address: str | None = None
    executor: Executor = "auto"  # auto | ray | local | serial: the shared rule, executor.choose_executor
    debug: bool = False
    ignore_existing: bool = False
    dryrun: bool = False

    def validate(self) -> None:
        if self.processes < 1:
            raise ConfigError("processes must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        if self.on_error not in ON_ERROR_CHOICES:
            raise ConfigError(f"on_error {self.on_error!r}; valid choices: {', '.join(ON_ERROR_CHOICES)}")
        self.dedupe.validate()
        read_only = self.bloom_filter is not None and self.bloom_filter.read_only
        if not self.evaluation and not read_only:
            raise ConfigError("no evaluation sets given (evaluation: [{name: NAME, documents: [GLOB, ...]}, ...])")
        names = [s.name for s in self.evaluation]
        for eval_set in self.evaluation:
            if not _SET_NAME.match(eval_set.name or ""):
                raise ConfigError(f"evaluation set name {eval_set.name!r} must be non-empty [A-Za-z0-9_] "
                                  "(it is part of attribute keys)")
            if eval_set.name == "document":
                raise ConfigError("evaluation set name 'document' is reserved (the document-level flag)")
            if not eval_set.documents:
                raise ConfigError(f"evaluation set {eval_set.name!r}: `documents` is empty")
        if len(set(names)) != len(names):
            raise ConfigError(f"evaluation set names must be unique: {names}")
        if len(names) > MAX_EVAL_SETS:
            raise ConfigError(f"at most {MAX_EVAL_SETS} evaluation sets (got {len(names)})")
