"""`dolma dedupe` configuration: Dolma's keys where the concept exists, plus `dedupe.minhash`."""

from __future__ import annotations

from dataclasses import dataclass, field

from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import Executor
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from dolma_pipeline.safety import check_name


@dataclass
class DocumentDedupeConfig:
    """Exact whole-document dedupe on the value at `key` (a JSONPath like `$.text` or `$.metadata.url`)."""

    attribute_name: str | None = None  # attribute key written for duplicates
    key: str = "$.text"  # JSONPath of the value that identifies a document (e.g. $.id or $.metadata.url)


@dataclass
class NgramDedupeConfig:
    """Dolma's `by_ngram`: a paragraph is scored by the fraction of its word n-grams seen earlier
    (dolma_pipeline/dedupe/ngram.py has the exact rules)."""

    ngram_length: int = 0  # Unicode (UAX #29) words per n-gram; 0: exact paragraph dedupe instead
    stride: int = 0  # words between sampled n-gram starts (Dolma's rule: starts 0, 1, 1+stride, ...); 0 or 1: all
    overlap_threshold: float = 1.0  # flag a paragraph whose seen fraction is at least this (compared in float32)
    skip_short_paragraphs: bool = False  # paragraphs with < 2 n-grams are scored by their n-grams, not as a whole

    def validate(self) -> None:
        if self.ngram_length < 0 or self.stride < 0:
            raise ConfigError("dedupe.paragraphs.by_ngram.ngram_length and stride must not be negative")


@dataclass
class ParagraphDedupeConfig:
    """Paragraph dedupe, exact or by n-gram overlap (`by_ngram`); paragraphs are the pieces between
    `paragraph_separator`s."""

    attribute_name: str | None = None  # attribute key of duplicate paragraph spans
    paragraph_separator: str = "\n"  # text that separates paragraphs
    by_ngram: NgramDedupeConfig | None = None  # score paragraphs by seen word n-grams (Dolma's by_ngram)

    @property
    def ngram(self) -> NgramDedupeConfig | None:
        """The n-gram settings when they apply (Dolma dedupes whole paragraphs when ngram_length is 0)."""
        return self.by_ngram if self.by_ngram is not None and self.by_ngram.ngram_length > 0 else None


@dataclass
class MinHashConfig:
    """MinHash-LSH near-duplicate detection (datasketch's affine32 permutation scheme).

    Defaults (see docs/dedupe.md): word 5-grams, 20 bands x 6 rows = 120 permutations, so a pair with
    Jaccard 0.8 becomes a candidate with probability 0.998, and candidates are checked by exact
    Jaccard of their shingle sets (`verify`) to drop those below `jaccard_threshold`.
    """

    bands: int = 20  # LSH bands
    rows: int = 6  # hashes per band
    num_perm: int | None = None  # defaults to bands * rows; must be at least that
    ngram: int = 5  # words per shingle
    seed: int = 1  # seed of the hash permutations
    lowercase: bool = True  # lowercase before shingling
    strip_punctuation: bool = True  # drop punctuation before shingling
    fold_digits: bool = False  # map every digit to 0 so numbers that differ only in digits match
    verify: bool = True  # check each candidate pair's real Jaccard similarity
    jaccard_threshold: float = 0.8  # pairs at or above this similarity are duplicates (with verify)
    max_bucket_pairs: int = 64  # buckets larger than this are linked as a star + chain, not all pairs

    @property
    def permutations(self) -> int:
        return self.num_perm or self.bands * self.rows

    def validate(self) -> None:
        if self.bands < 1 or self.rows < 1:
            raise ConfigError("dedupe.minhash.bands and dedupe.minhash.rows must be at least 1")
        if self.permutations < self.bands * self.rows:
            raise ConfigError(f"dedupe.minhash.num_perm ({self.num_perm}) must be at least bands x rows "
                              f"({self.bands} x {self.rows} = {self.bands * self.rows})")
        if self.ngram < 1:
            raise ConfigError("dedupe.minhash.ngram must be at least 1")
        if not 0.0 < self.jaccard_threshold <= 1.0:
            raise ConfigError("dedupe.minhash.jaccard_threshold must lie in (0, 1]")
        if self.max_bucket_pairs < 2:
            raise ConfigError("dedupe.minhash.max_bucket_pairs must be at least 2")


@dataclass
class WorkDirConfig:
    """Dolma's `work_dir: {input, output}` (its local staging directories); here `output` (else `input`)
    is the directory for intermediate files."""

    input: str | None = None  # Dolma's local copy of inputs (accepted, not needed here)
    output: str | None = None  # where intermediate files go


@dataclass
class CompressionConfig:
    """Dolma's `compression: {input, output}`. Compression follows the file extensions (.gz, .zst), as in
    Dolma by default; a codec name is accepted, anything else is an error."""

    input: str | None = None  # input compression (default: from the file names)
    output: str | None = None  # output compression (default: from the file names)


@dataclass
class BloomFilterConfig:
    """Dolma's `bloom_filter` block.

    Without `read_only`, dedupe here stays exact (a sorted shuffle of 128-bit hashes: no false positives,
    whatever the sizes given); with a `file`, a Bloom filter of every unit's hash (sized by `size_in_bytes`,
    or by `estimated_doc_count` and `desired_false_positive_rate`) is written there at the end. With
    `read_only: true`, the units found in the filter at `file` (built by an earlier run) are flagged, and
    nothing else: Dolma's decontamination workflow (build from the evaluation set, test the training set).
    """

    file: str | None = None  # the Bloom filter file
    size_in_bytes: int = 0  # filter size (0: from the count and the rate)
    read_only: bool = False  # only probe the filter, never add to it
    estimated_doc_count: int = 0  # expected number of entries (sizes the filter)
    desired_false_positive_rate: float = 0.0  # target false-positive rate

    def validate(self) -> None:
        if self.read_only and not self.file:
            raise ConfigError("bloom_filter.read_only needs bloom_filter.file (the filter built by an earlier run)")
        if self.size_in_bytes < 0 or self.estimated_doc_count < 0:
            raise ConfigError("bloom_filter.size_in_bytes and estimated_doc_count must not be negative")
        if not 0.0 <= self.desired_false_positive_rate < 1.0:
            raise ConfigError("bloom_filter.desired_false_positive_rate must lie in [0, 1)")


@dataclass
class DedupeSection:
    """Dolma's `dedupe` block: exactly one of `documents`, `paragraphs` or `minhash`."""

    name: str = ""  # names the attribute directory (attributes/<name>)
    documents: DocumentDedupeConfig | None = None  # exact document dedupe by a key
    paragraphs: ParagraphDedupeConfig | None = None  # paragraph dedupe: exact, or by n-gram overlap (by_ngram)
    minhash: MinHashConfig | None = None  # MinHash near-duplicate detection
    skip_empty: bool = False  # ignore empty documents or paragraphs
    min_length: int = 0  # units (documents or paragraphs) with fewer characters are not deduplicated
    min_words: int = 0  # ... or with fewer whitespace-separated words
    document_dir: str = "documents"  # the path component that holds documents (attributes go beside it)
    # Dolma's manual partitioning of one run over several jobs; the shuffle here partitions by itself.
    num_partitions: int = 1
    partition_index: int = 0  # Dolma's partition of this job (accepted for compatibility)
    file_partition: bool = False  # Dolma's per-file partitioning (accepted for compatibility)

    @property
    def mode(self) -> str:
        return "documents" if self.documents else "paragraphs" if self.paragraphs else "minhash"

    def validate(self) -> None:
        modes = [name for name in ("documents", "paragraphs", "minhash") if getattr(self, name) is not None]
        if len(modes) != 1:
            raise ConfigError("dedupe needs exactly one of dedupe.documents, dedupe.paragraphs or dedupe.minhash"
                              + (f" (got {', '.join(modes)})" if modes else ""))
        if not self.name:
            raise ConfigError("dedupe.name is required (it names the attribute directory)")
        check_name(self.name, "dedupe.name")
        if self.num_partitions != 1 or self.partition_index != 0:
            raise ConfigError("dedupe.num_partitions / dedupe.partition_index split one Dolma run over several "
                              "jobs; here one run covers every file and partitions by itself (use `partitions`): "
                              "leave them at 1 / 0")
        if self.min_length < 0 or self.min_words < 0:
            raise ConfigError("dedupe.min_length and dedupe.min_words must not be negative")
        if self.documents is not None and not self.documents.attribute_name:
            raise ConfigError("dedupe.documents.attribute_name is required")
        if self.paragraphs is not None:
            if not self.paragraphs.attribute_name:
                raise ConfigError("dedupe.paragraphs.attribute_name is required")
            if not self.paragraphs.paragraph_separator:
                raise ConfigError("dedupe.paragraphs.paragraph_separator must not be empty")
            if self.paragraphs.by_ngram is not None:
                self.paragraphs.by_ngram.validate()


@dataclass
class DedupeConfig:
    """`dolma dedupe` options."""

    documents: list[str] = field(default_factory=list)
    dedupe: DedupeSection = field(default_factory=DedupeSection)  # what to deduplicate and how (Dolma's dedupe block)
    processes: int = 1
    partitions: int = 0  # shuffle partitions; 0 = 4 per process (at least 4)
    # intermediate files; default <root>/dedupe_work/<name> beside documents/ (Dolma's {input, output}: output)
    work_dir: str | WorkDirConfig | None = None
    destination: str | None = None  # attribute directory instead of <root>/attributes/<name>
    keep_work_dir: bool = False
    ray_address: str | None = None
    executor: Executor = "auto"  # auto | ray | local | serial: see dolma_pipeline.executor.choose_executor
    debug: bool = False
    ignore_existing: bool = False
    dryrun: bool = False
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # a longer document line is an error naming file and line
    bloom_filter: BloomFilterConfig | None = None  # Dolma's Bloom filter block (an exact index is used unless a filter file is given)
    compression: CompressionConfig | None = None  # Dolma's compression block
    is_s3_volume: bool = False  # Dolma's hint for its S3 staging; nothing to do here

    @property
    def num_partitions(self) -> int:
        return self.partitions or max(4, 4 * self.processes)

    def validate(self) -> None:
        if self.processes < 1:
            raise ConfigError("processes must be at least 1")
        if self.partitions < 0:
            raise ConfigError("partitions must not be negative")
        self.dedupe.validate()  # also when the whole `dedupe` block is missing (its defaults are not valid)
        if isinstance(self.work_dir, WorkDirConfig):
            self.work_dir = self.work_dir.output or self.work_dir.input
        if self.compression is not None:
            for side in ("input", "output"):
                codec = getattr(self.compression, side)
                if codec not in (None, "", "infer", "auto", "gz", "gzip", "zst", "zstd", "none"):
                    raise ConfigError(f"compression.{side}: unknown codec {codec!r}; compression follows the "
                                      "file extensions (.gz, .zst)")
        bloom = self.bloom_filter
        if bloom is not None and bloom.read_only:
            if self.dedupe.mode == "minhash":
                raise ConfigError("bloom_filter.read_only applies to documents and paragraphs dedupe, not minhash")
