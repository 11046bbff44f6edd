"""Record framing: offsets, truncated and corrupt gzip members, plain and lz4 WARC files."""

from __future__ import annotations

import gzip

import pytest

from dolma_pipeline.warc.reader import Problem, Record, iter_warc
from dolma_pipeline.warc.sample import write_warc

from .conftest import member_offsets


def _records(path):
    return list(iter_warc(path))


def test_gzip_records_carry_their_member_offsets(warc_file, pages):
    items = _records(warc_file)
    assert all(isinstance(i, Record) for i in items)
    assert [i.type for i in items][:3] == ["warcinfo", "request", "response"]
    assert [i.offset for i in items] == member_offsets(warc_file)
    responses = [i for i in items if i.type == "response"]
    assert [r.headers["WARC-Target-URI"] for r in responses] == [p.url for p in pages]
    data = open(warc_file, "rb").read()
    for record in responses:  # each offset starts a member that holds exactly this record
        member = gzip.decompress(_member(data, record.offset))
        assert member.startswith(b"WARC/1.") and record.headers["WARC-Record-ID"].encode() in member
        assert record.block.endswith(pages[responses.index(record)].body)


def _member(data: bytes, offset: int) -> bytes:
    import zlib

    dec = zlib.decompressobj(31)
    dec.decompress(data[offset:])
    return data[offset : len(data) - len(dec.unused_data)]


def test_truncated_last_member_is_reported_not_returned_short(tmp_path, warc_file):
    data = open(warc_file, "rb").read()
    last = member_offsets(warc_file)[-1]
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: last + (len(data) - last) // 2])
    items = _records(str(cut))
    assert isinstance(items[-1], Problem) and items[-1].reason == "truncated" and items[-1].offset == last
    assert all(isinstance(i, Record) for i in items[:-1]) and len(items) == len(member_offsets(warc_file))


def test_corrupt_member_is_reported_at_its_offset_and_reading_resumes(tmp_path, warc_file):
    data = bytearray(open(warc_file, "rb").read())
    offsets = member_offsets(warc_file)
    victim = offsets[4]
    size = offsets[5] - victim
    for i in range(victim + size // 3, victim + size // 3 + 40):
        data[i] ^= 0x5A
    bad = tmp_path / "bad.warc.gz"
    bad.write_bytes(bytes(data))
    items = _records(str(bad))
    problems = [i for i in items if isinstance(i, Problem)]
    assert len(problems) == 1 and problems[0].offset == victim and problems[0].reason == "corrupt_gzip"
    assert [i.offset for i in items if isinstance(i, Record)] == [o for o in offsets if o != victim]


def test_garbage_between_members_is_one_problem(tmp_path, warc_file):
    data = open(warc_file, "rb").read()
    offsets = member_offsets(warc_file)
    bad = tmp_path / "junk.warc.gz"
    bad.write_bytes(data[: offsets[3]] + b"\x00junk that is not gzip\x1f\x8b" * 20 + data[offsets[3] :])
    items = _records(str(bad))
    problems = [i for i in items if isinstance(i, Problem)]
    assert len(problems) == 1 and problems[0].offset == offsets[3]
    assert len([i for i in items if isinstance(i, Record)]) == len(offsets)


def test_plain_warc_and_its_truncation(tmp_path, pages):
    path = str(tmp_path / "plain.warc")
    write_warc(path, pages, gzip_records=False)
    items = _records(path)
    assert all(isinstance(i, Record) for i in items)
    responses = [i for i in items if i.type == "response"]
    assert len(responses) == len(pages)
    data = open(path, "rb").read()
    assert data[responses[1].offset :].startswith(b"WARC/1.")
    cut = tmp_path / "cut.warc"
    cut.write_bytes(data[: responses[-1].offset + 2000])
    items = _records(str(cut))
    assert isinstance(items[-1], Problem) and items[-1].reason == "truncated"
    assert items[-1].offset == responses[-1].offset


def test_lz4_warc_is_read_when_fastwarc_supports_it(tmp_path, pages):
    stream_io = pytest.importorskip("fastwarc.stream_io")
    plain = str(tmp_path / "plain.warc")
    write_warc(plain, pages[:3], gzip_records=False)
    path = str(tmp_path / "pages.warc.lz4")
    writer = stream_io.Lz4Writer(path)
    writer.write(open(plain, "rb").read())
    writer.close()
    items = _records(path)
    assert all(isinstance(i, Record) for i in items)
    assert [i.headers["WARC-Target-URI"] for i in items if i.type == "response"] == [p.url for p in pages[:3]]


def test_empty_and_non_warc_files(tmp_path):
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    assert _records(str(empty)) == []
    text = tmp_path / "text.warc.gz"
    text.write_bytes(gzip.compress(b"just some text, not a WARC record\n" * 10, mtime=0))
    items = _records(str(text))
    assert len(items) == 1 and isinstance(items[0], Problem) and items[0].offset == 0


def test_garbage_in_a_plain_warc_is_one_problem_and_reading_resumes(tmp_path, pages):
    path = str(tmp_path / "plain.warc")
    write_warc(path, pages[:3], gzip_records=False)
    offsets = [i.offset for i in _records(path)]
    data = open(path, "rb").read()
    junk = b"GARBAGE LINE\r\nmore junk\r\n\r\n"
    bad = tmp_path / "bad.warc"
    bad.write_bytes(data[: offsets[3]] + junk + data[offsets[3] :])
    items = _records(str(bad))
    problems = [i for i in items if isinstance(i, Problem)]
    assert len(problems) == 1 and problems[0].reason == "bad_warc_record" and problems[0].offset == offsets[2]
    records = [i for i in items if isinstance(i, Record)]
    assert [r.offset for r in records] == offsets[:3] + [o + len(junk) for o in offsets[3:]]
    assert [r.headers["WARC-Target-URI"] for r in records if r.type == "response"] == [p.url for p in pages[:3]]
    assert bad.read_bytes()[records[3].offset :].startswith(b"WARC/1.")
