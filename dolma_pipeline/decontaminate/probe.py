"""The training side: probe every document of one file against the evaluation index, write attributes.

Paragraph mode normalises a whole document at once (`normalize_lines`), hashes its paragraphs with
dedupe's paragraph hashing (`exact.hash_units`) and looks a batch of digests up in the index; a hit
marks the raw paragraph's span (its separator included, as dedupe does). N-gram mode maps each
normalised word to its id in the evaluation vocabulary (-1 outside it), keys every window of n known
words and looks the batch up; hits mark the characters from the window's first word to its last.

Attribute rows (one per document, in order; Dolma's layout), for `A` = `attribute_name` of a mode:
`A`: the flagged spans `[[start, end, 1.0], ...]` (any evaluation set; Dolma's decontamination key),
`A__<set>`: the spans found in evaluation set `<set>`, `A__document`: `[[0, len(text), 1.0]]` when the
document has any flagged span, else `[]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import orjson

from dolma_pipeline import io
from dolma_pipeline.decontaminate.config import DecontaminateSection
from dolma_pipeline.decontaminate.index import Index, load_index, window_keys
from dolma_pipeline.decontaminate.normalize import normalize_lines, word_spans, words
from dolma_pipeline.dedupe import exact
from dolma_pipeline.dedupe.plan import counts_cpu, write_rows
from dolma_pipeline.documents import Document
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.executor import Shard
from dolma_pipeline.reader import ReadStats, read_documents

_HASH_RULES = exact.UnitRules("paragraphs", separator="\n", skip_empty=True)
_NO_FIELDS: dict = {}


@dataclass
class ProbeShard(Shard):
    index_dir: str = ""
    index_fingerprint: str = ""
    section: DecontaminateSection = field(default_factory=DecontaminateSection)
    set_names: list[str] = field(default_factory=list)
    on_error: str = "fail"
    batch_size: int = 512
    final: bool = True  # write the attribute file now; else `output` is an intermediate for `write_file`


@dataclass
class WriteShard(Shard):
    section: DecontaminateSection = field(default_factory=DecontaminateSection)
    set_names: list[str] = field(default_factory=list)
    frequent: list[int] = field(default_factory=list)  # n-gram positions found in too many training documents


# -------------------------------------------------------------------------------------------- probing
def paragraph_hits(batch: list[Document], index: Index, section: DecontaminateSection,
                   counts: dict[str, int]) -> dict[int, list[list[int]]]:
    """{document number in the batch: [[start, end, set mask], ...]} of its evaluation paragraphs."""
    assert section.paragraphs is not None and index.paragraphs is not None
    sep = section.paragraphs.paragraph_separator
    # a line shorter or longer than every evaluation paragraph cannot be one: blank it, so it is not hashed
    shortest, longest = index.meta["paragraphs"]["min_chars"], index.meta["paragraphs"]["max_chars"]
    blobs, doc_numbers, kept_counts, kept_pieces, normalised = [], [], [], [], []
    for d, doc in enumerate(batch):
        text = doc.text
        body = text[: -len(sep)] if text.endswith(sep) else text
        if sep != "\n":
            body = "\n".join(piece.replace("\n", " ") for piece in body.split(sep))
        lines = [line if shortest <= len(line) <= longest else "" for line in normalize_lines(body, section.normalize)]
        normalised.append(lines)
        kept, blob, _, _ = exact.hash_units(_NO_FIELDS, "\n".join(lines), _HASH_RULES, [], counts)
        if blob:
            blobs.append(blob)
            doc_numbers.append(d)
            kept_counts.append(len(kept))
            kept_pieces.extend(kept)
    if not blobs:
        return {}
    pairs = np.frombuffer(b"".join(blobs), dtype="<u8").reshape(len(kept_pieces), -1)
    doc_of = np.repeat(np.asarray(doc_numbers, dtype=np.int64), kept_counts)

    def text_of(q: int) -> str:
        return normalised[int(doc_of[q])][kept_pieces[q]]

    masks = index.paragraphs.lookup(pairs[:, 0].copy(), pairs[:, 1].copy(), text_of)
    found = np.flatnonzero(masks)
    hits: dict[int, list[list[int]]] = {}
    for d in sorted(set(doc_of[found].tolist())):
        mine = found[doc_of[found] == d]
        pieces, trailing = exact.paragraph_pieces(batch[d].text, sep)
        chosen = [kept_pieces[q] for q in mine.tolist()]
        starts, ends = exact.unit_spans(list(map(len, pieces)), [len(pieces)], [trailing], chosen, [len(chosen)],
                                        len(sep))
        hits[d] = [[s, e, int(m)] for s, e, m in zip(starts.tolist(), ends.tolist(), masks[mine].tolist())]
    return hits


def ngram_hits(batch: list[Document], index: Index, section: DecontaminateSection,
               counts: dict[str, int]) -> dict[int, list[list[int]]]:
    """{document number in the batch: [[start, end, index position, set mask], ...]} of its shared n-grams."""
    assert section.ngrams is not None and index.ngrams is not None
    n, lookup_word = index.ngrams.n, index.ngrams.vocab.get
    parts, first_word = [], []
    offset = 0
    separator = np.full(1, -1, dtype=np.int64)
    for doc in batch:
        doc_words = words(doc.text, section.normalize)
        ids = np.fromiter(map(lookup_word, doc_words, repeat(-1)), dtype=np.int64, count=len(doc_words))
        parts += [ids, separator]
        first_word.append(offset)
        offset += len(ids) + 1
    flat = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    starts, keys = window_keys(flat, n)
    counts["ngram_windows_probed"] += len(starts)
    if not len(starts):
        return {}
    windows = np.lib.stride_tricks.sliding_window_view(flat, n)[starts]
    masks, positions = index.ngrams.lookup(windows, keys)
    found = np.flatnonzero(masks)
    doc_of = np.searchsorted(np.asarray(first_word), starts[found], side="right") - 1
    hits: dict[int, list[list[int]]] = {}
    for d in sorted(set(doc_of.tolist())):
        spans = word_spans(batch[d].text)
        mine = found[doc_of == d]
        hits[d] = [[spans[j][0], spans[j + n - 1][1], int(p), int(m)] for j, p, m in
                   zip((starts[mine] - first_word[d]).tolist(), positions[mine].tolist(), masks[mine].tolist())]
    return hits


@counts_cpu
def probe_file(shard: ProbeShard) -> dict[str, Any]:
    """Probe one training file; write its attribute file (`final`) or its hits for `write_file`."""
    index = load_index(shard.index_dir, shard.index_fingerprint)
    section = shard.section
    stats = ReadStats()
    counts = {"units_considered": 0, "skipped_empty": 0, "ngram_windows_probed": 0}
    docs: list[list] = []
    hits: dict[int, dict[str, list]] = {}

    def probe(batch: list[Document]) -> None:
        base = len(docs)
        docs.extend([doc.id, doc.source, len(doc.text)] for doc in batch)
        if section.paragraphs is not None:
            for d, found in paragraph_hits(batch, index, section, counts).items():
                hits.setdefault(base + d, {})["p"] = found
        if section.ngrams is not None:
            for d, found in ngram_hits(batch, index, section, counts).items():
                hits.setdefault(base + d, {})["g"] = found

    try:
        batch: list[Document] = []
        for doc in read_documents(shard.input, shard.on_error, stats):
            batch.append(doc)
            if len(batch) >= shard.batch_size:
                probe(batch)
                batch = []
        probe(batch)
    except DataFormatError as e:
        if shard.on_error == "fail":
            raise
        return {"skipped_file": True, "errors": [*stats.errors, f"file skipped: {e}"],
                "lines_skipped": stats.lines_skipped}
    probed = {"paragraphs_probed": counts["units_considered"], "ngram_windows_probed": counts["ngram_windows_probed"]}
    if shard.final:
        found = write_attributes(shard.output, docs, hits, section, shard.set_names, set())
        return {**stats.as_dict(), **probed, **found}
    frequency: dict[str, int] = {}
    for doc_hits in hits.values():
        for position in {g[2] for g in doc_hits.get("g", [])}:
            frequency[str(position)] = frequency.get(str(position), 0) + 1
    with io.AtomicWriter(shard.output) as out:
        out.write(orjson.dumps({"docs": docs, "hits": {str(d): h for d, h in hits.items()}, "stats": stats.as_dict()}))
    return {**stats.as_dict(), **probed, "ngram_document_frequency": frequency}


@counts_cpu
def write_file(shard: WriteShard) -> dict[str, Any]:
    """The attribute file of one training file from its probed hits, frequent n-grams left out."""
    with io.open_raw(shard.input) as fh:
        probed = orjson.loads(fh.read())
    hits = {int(d): h for d, h in probed["hits"].items()}
    found = write_attributes(shard.output, probed["docs"], hits, shard.section, shard.set_names, set(shard.frequent))
    return {**probed["stats"], **found}


# -------------------------------------------------------------------------------------------- writing
def merge_spans(spans: list[tuple[int, int]], touching: bool = True) -> list[list]:
    """Sorted spans, overlapping ones joined (and touching ones too with `touching`)."""
    out: list[list] = []
    for start, end in sorted(spans):
        if out and (start <= out[-1][1] if touching else start < out[-1][1]):
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end, 1.0])
    return out


def write_attributes(path: str, docs: list[list], hits: dict[int, dict[str, list]], section: DecontaminateSection,
                     set_names: list[str], frequent: set[int]) -> dict[str, Any]:
    """Write one attribute row per document; returns the per-set counts of what was flagged."""
    modes = [(mode, cfg.attribute_name) for mode, cfg in (("p", section.paragraphs), ("g", section.ngrams))
             if cfg is not None]
    names = ["any", *set_names]
    found: dict[str, dict[str, int]] = {f"{kind}_{what}": dict.fromkeys(names, 0) for kind in ("paragraph", "ngram")
                                        for what in ("documents", "spans", "characters")}
    found["documents_contaminated"] = dict.fromkeys(names, 0)
    found["ngrams_ignored_as_frequent"] = {"any": 0}

    def rows() -> Iterator[bytes]:
        for d, (doc_id, source, length) in enumerate(docs):
            attributes: dict[str, list] = {}
            doc_hits = hits.get(d, {})
            contaminated_by: set[str] = set()
            for mode, name in modes:
                kind = "paragraph" if mode == "p" else "ngram"
                spans = doc_hits.get(mode, [])
                if mode == "g" and frequent:
                    kept = [g for g in spans if g[2] not in frequent]
                    found["ngrams_ignored_as_frequent"]["any"] += len(spans) - len(kept)
                    spans = kept
                for i, set_name in enumerate(names):
                    bit = None if i == 0 else 1 << (i - 1)
                    # paragraphs stay one span each (as Dolma's); n-gram windows that overlap or touch are joined
                    merged = merge_spans([(s[0], s[1]) for s in spans if bit is None or s[-1] & bit], mode == "g")
                    attributes[name if bit is None else f"{name}__{set_name}"] = merged
                    if merged:
                        contaminated_by.add(set_name)
                        found[f"{kind}_documents"][set_name] += 1
                        found[f"{kind}_spans"][set_name] += len(merged)
                        found[f"{kind}_characters"][set_name] += sum(e - s for s, e, _ in merged)
                attributes[f"{name}__document"] = [[0, length, 1.0]] if attributes[name] else []
            for set_name in contaminated_by:
                found["documents_contaminated"][set_name] += 1
            row: dict[str, Any] = {"id": doc_id, "attributes": attributes}
            if source is not None:
                row["source"] = source
            yield orjson.dumps(row)

    with io.AtomicWriter(path) as writer:
        write_rows(writer, rows())
    return found
