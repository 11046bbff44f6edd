"""`dolma warc` end to end: Dolma documents, bad input under each on_error policy, taggers, WET, resume."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re

import pytest

from dolma_pipeline.cli import main
from dolma_pipeline.warc.sample import Response, bad_records, write_warc

from ..conftest import read_tree
from .conftest import member_offsets

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


def warc(tmp_path, *args, documents=None, destination=None):
    destination = destination or str(tmp_path / "out" / "documents" / "web")
    documents = documents or str(tmp_path / "warc")
    return main(["warc", "--documents", documents, "--destination", destination, "--source_name", "web", *args])


def read_docs(path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def summary(tmp_path) -> dict:
    path = tmp_path / "out" / "documents" / "web" / ".dolma_warc.summary.json"
    return json.loads(path.read_text())["summary"]


def test_documents_have_dolma_fields_ids_and_resiliparse_text(tmp_path, warc_file, pages):
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    assert warc(tmp_path) == 0
    docs = read_docs(tmp_path / "out" / "documents" / "web" / "pages.jsonl.gz")
    assert len(docs) == len(pages)
    records = {}
    import fastwarc.warc as fw

    for record in fw.ArchiveIterator(open(warc_file, "rb"), record_types=fw.WarcRecordType.response):
        records[record.headers["WARC-Target-URI"]] = record.headers["WARC-Record-ID"]
    for doc, page in zip(docs, pages, strict=True):
        assert list(doc) == ["id", "text", "source", "created", "added", "metadata"]
        expected_id = base64.b32encode(hashlib.sha1(records[page.url].encode()).digest()).decode().lower()
        assert doc["id"] == expected_id and doc["source"] == "web"
        assert TIMESTAMP.match(doc["created"]) and doc["created"] == "2024-10-01T10:00:00.000Z"
        assert doc["added"] == "2024-10-01T10:00:00.000Z"  # the warcinfo record's date: same on every rerun
        meta = doc["metadata"]
        assert meta["url"] == page.url and meta["warc_file"] == warc_file
        assert meta["content_type"] == "text/html" and meta["charset"] == "utf_8"
        assert meta["warc_record_id"] == records[page.url]
        assert meta["warc_offset"] in member_offsets(warc_file)
        html = page.body.decode("utf-8").strip()
        assert doc["text"] == extract_plain_text(HTMLTree.parse(html), main_content=True, list_bullets=True,
                                                 preserve_formatting=True, comments=True)
        assert "html" not in meta


def test_options_added_html_in_metadata_and_dolma_ids(tmp_path, warc_file, pages):
    assert warc(tmp_path, "--added", "2025-01-02T03:04:05Z", "--store_html_in_metadata", "--id_from",
                "payload_digest") == 0
    docs = read_docs(tmp_path / "out" / "documents" / "web" / "pages.jsonl.gz")
    assert {d["added"] for d in docs} == {"2025-01-02T03:04:05.000Z"}
    assert docs[0]["metadata"]["html"] == pages[0].body.decode().strip()
    digest = base64.b32encode(hashlib.sha1(pages[0].body).digest()).decode().lower()
    assert docs[0]["id"] == digest  # Dolma 1.2.1's id: the WARC-Payload-Digest


def _bad_warc(tmp_path, pages, corrupt=True):
    path = str(tmp_path / "warc" / "mixed.warc.gz")
    write_warc(path, pages[:4] + bad_records() + pages[4:], corrupt_after=6 if corrupt else None)
    return path


def test_bad_input_fail_names_file_and_offset_and_writes_nothing(tmp_path, pages, capsys):
    path = _bad_warc(tmp_path, pages)
    assert warc(tmp_path) == 1
    err = capsys.readouterr().err
    assert path in err and re.search(r"byte \d+: corrupt gzip member", err)
    out = tmp_path / "out" / "documents" / "web"
    assert not out.exists() or not [f for f in os.listdir(out) if not f.startswith(".dolma_warc")]


def test_bad_input_skip_record_counts_each_reason(tmp_path, pages):
    _bad_warc(tmp_path, pages)
    assert warc(tmp_path, "--on_error", "skip_record") == 0
    docs = read_docs(tmp_path / "out" / "documents" / "web" / "mixed.jsonl.gz")
    urls = [d["metadata"]["url"] for d in docs]
    assert urls == [p.url for p in pages[:4]] + ["https://bad.example/latin1.html"] + [p.url for p in pages[4:]]
    latin = docs[4]
    assert "Le café est servi à la française" in latin["text"] and latin["metadata"]["charset"] != "utf_8"
    records = summary(tmp_path)["extra"]["records"]
    assert records["not_html"] == 5  # png, pdf, a pdf labelled text/html, javascript, css
    assert records["http_status_not_200"] == 2 and records["empty_page"] == 1
    assert records["broken_http_header"] == 1 and records["undecodable"] == 1 and records["corrupt_gzip"] == 1
    assert records["documents"] == len(docs)
    errors = summary(tmp_path)["errors"]
    assert len(errors) == 3 and all(re.search(r"mixed\.warc\.gz: byte \d+: ", e) for e in errors)


def test_bad_input_skip_file_leaves_no_output_and_no_marker(tmp_path, pages):
    _bad_warc(tmp_path, pages)
    write_warc(str(tmp_path / "warc" / "good.warc.gz"), pages[:2])
    assert warc(tmp_path, "--on_error", "skip_file") == 0
    out = tmp_path / "out" / "documents" / "web"
    assert sorted(f for f in os.listdir(out) if not f.startswith(".dolma_warc")) == [".good.jsonl.gz.done.json",
                                                                                  "good.jsonl.gz"]
    s = summary(tmp_path)
    assert s["files_skipped"] == 1 and any("file skipped" in e and "mixed.warc.gz" in e for e in s["errors"])
    # the skipped file has no marker, so the next run tries it again (and the good one is not redone)
    assert warc(tmp_path, "--on_error", "skip_file") == 0
    s = summary(tmp_path)
    assert (s["files_resumed"], s["files_skipped"], s["files_processed"]) == (1, 1, 0)


def test_filtered_records_are_counted_never_errors(tmp_path, pages):
    bad = [r for r in bad_records() if "broken" not in r.url and "undecodable" not in r.url]
    write_warc(str(tmp_path / "warc" / "f.warc.gz"), pages[:2] + bad)
    assert warc(tmp_path) == 0  # on_error fail: images, 404s and empty pages are not bad data
    records = summary(tmp_path)["extra"]["records"]
    assert records["not_html"] == 5 and records["documents"] == 3 and records["not_response"] == len(pages[:2] + bad)


@pytest.mark.parametrize("policy", ["fail", "skip_record", "skip_file"])
def test_truncated_file_under_each_policy(tmp_path, warc_file, pages, policy, capsys):
    data = open(warc_file, "rb").read()
    last = member_offsets(warc_file)[-1]
    with open(warc_file, "wb") as fh:
        fh.write(data[: last + 100])
    code = warc(tmp_path, "--on_error", policy)
    out = tmp_path / "out" / "documents" / "web" / "pages.jsonl.gz"
    if policy == "fail":
        assert code == 1 and f"byte {last}: truncated gzip member" in capsys.readouterr().err
        assert not out.exists()
    elif policy == "skip_record":
        assert code == 0 and len(read_docs(out)) == len(pages) - 1
        assert summary(tmp_path)["extra"]["records"]["truncated"] == 1
    else:
        assert code == 0 and not out.exists() and summary(tmp_path)["files_skipped"] == 1


PLUGIN = '''
from dolma_pipeline.documents import Span
from dolma_pipeline.tagger import TAGGERS, Tagger


@TAGGERS.register("test_url_json_v1")
class UrlJson(Tagger):
    """1.0 when the page URL mentions json (a pre-tagger: sees the URL and the HTML)."""

    def predict(self, doc):
        assert doc.text.lstrip().startswith("<"), "pre-taggers see the HTML"
        return [Span(0, len(doc.text), "json", 1.0)] if "json" in doc.metadata["url"] else []
'''


def test_pre_and_post_taggers_write_dolma_attributes(tmp_path, warc_file, pages):
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    assert warc(tmp_path, "--tagger_modules", str(plugin), "--pre.taggers", "test_url_json_v1", "char_length_v1",
                "--post.taggers", "whitespace_tokenizer_v1") == 0
    root = tmp_path / "out"
    docs = read_docs(root / "documents" / "web" / "pages.jsonl.gz")
    pre = read_docs(root / "attributes" / "char_length_v1" / "web" / "pages.jsonl.gz")
    flag = read_docs(root / "attributes" / "test_url_json_v1" / "web" / "pages.jsonl.gz")
    post = read_docs(root / "attributes" / "whitespace_tokenizer_v1" / "web" / "pages.jsonl.gz")
    assert [r["id"] for r in pre] == [r["id"] for r in post] == [r["id"] for r in flag] == [d["id"] for d in docs]
    for doc, page, p, q in zip(docs, pages, pre, post, strict=True):
        html = page.body.decode().strip()
        assert p["attributes"] == {"char_length_v1__char_length_v1__length": [[0, len(html), float(len(html))]]}
        (key, spans), = q["attributes"].items()
        assert key == "whitespace_tokenizer_v1__whitespace_tokenizer_v1__length" and spans[0][1] == len(doc["text"])
    assert [bool(r["attributes"]) for r in flag] == ["json" in p.url for p in pages]
    # pre.skip: pages on which no pre-tagger gives a span are dropped (Dolma's meaning)
    dest = str(tmp_path / "skip" / "documents" / "web")
    assert warc(tmp_path, "--tagger_modules", str(plugin), "--pre.taggers", "test_url_json_v1", "--pre.skip",
                destination=dest) == 0
    kept = read_docs(os.path.join(dest, "pages.jsonl.gz"))
    assert [d["metadata"]["url"] for d in kept] == [p.url for p in pages if "json" in p.url]


def test_language_id_as_post_tagger(tmp_path):
    import codecs
    import this

    from dolma_pipeline.assets import asset_path

    try:
        asset_path("lid.176.ftz")
    except Exception:
        pytest.skip("lid.176.ftz is not in the cache (python -m dolma_pipeline.assets)")
    zen = codecs.decode(this.s, "rot13").replace("\n", "</p><p>")
    english = Response("https://zen.example/", f"<html><body><p>{zen}</p></body></html>".encode())
    french = [r for r in bad_records() if "latin1" in r.url]
    write_warc(str(tmp_path / "warc" / "lang.warc.gz"), [english, *french])
    assert warc(tmp_path, "--post.taggers", "ft_lang_id_en_doc_v2") == 0
    rows = read_docs(tmp_path / "out" / "attributes" / "ft_lang_id_en_doc_v2" / "web" / "lang.jsonl.gz")
    en = [r["attributes"]["ft_lang_id_en_doc_v2__ft_lang_id_en_doc_v2__en"][0][2] for r in rows]
    assert en[0] > 0.5 > en[1]


def test_same_bytes_for_one_and_two_processes_and_after_resume(tmp_path, pages):
    for n in range(3):
        write_warc(str(tmp_path / "warc" / f"part-{n}.warc.gz"), pages[n::3] + bad_records(n))
    args = ["--on_error", "skip_record", "--post.taggers", "char_length_v1"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert warc(tmp_path, *args, "--processes", "1", destination=str(one / "documents")) == 0
    assert warc(tmp_path, *args, "--processes", "2", "--executor", "local", destination=str(two / "documents")) == 0
    assert read_tree(one) == read_tree(two) and len(read_tree(one)) == 6
    # an interrupted run: one output lost with its marker, a stale temporary left behind
    os.remove(one / "documents" / "part-1.jsonl.gz")
    os.remove(one / "documents" / ".part-1.jsonl.gz.done.json")
    (one / "documents" / ".part-1.jsonl.gz.tmp-deadbeef0000").write_bytes(b"half")
    assert warc(tmp_path, *args, destination=str(one / "documents")) == 0
    assert read_tree(one) == read_tree(two)
    s = json.loads((one / "documents" / ".dolma_warc.summary.json").read_text())["summary"]
    assert s["files_resumed"] == 2 and s["files_processed"] == 1
    assert not [f for f in os.listdir(one / "documents") if ".tmp-" in f]


def test_wet_input(tmp_path):
    import io as _io

    from warcio.warcwriter import WARCWriter

    texts = {"https://a.example/": "First page.\nWith two lines.", "https://b.example/x": "Zweite Seite: Grüße."}
    path = tmp_path / "warc" / "x.warc.wet.gz"
    path.parent.mkdir()
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, text in texts.items():
            body = text.encode()
            writer.write_record(writer.create_warc_record(
                url, "conversion", payload=_io.BytesIO(body), length=len(body), warc_content_type="text/plain",
                warc_headers_dict={"WARC-Date": "2024-10-01T10:00:00Z", "WARC-Refers-To": "<urn:uuid:x>"}))
        empty = writer.create_warc_record("https://c.example/", "conversion", payload=_io.BytesIO(b""), length=0,
                                          warc_headers_dict={"WARC-Date": "2024-10-01T10:00:00Z"})
        writer.write_record(empty)
    assert warc(tmp_path, "--format", "wet") == 0
    docs = read_docs(tmp_path / "out" / "documents" / "web" / "x.jsonl.gz")
    assert {d["metadata"]["url"]: d["text"] for d in docs} == texts
    assert docs[0]["metadata"]["warc_refers_to"] == "<urn:uuid:x>" and docs[0]["created"] == "2024-10-01T10:00:00.000Z"
    assert summary(tmp_path)["extra"]["records"]["empty_page"] == 1


def test_trafilatura_linearizer(tmp_path, warc_file, pages):
    import trafilatura

    assert warc(tmp_path, "--linearizer", "trafilatura") == 0
    docs = read_docs(tmp_path / "out" / "documents" / "web" / "pages.jsonl.gz")
    expected = [trafilatura.extract(p.body.decode().strip(), output_format="txt", include_comments=False,
                                    include_tables=False) or "" for p in pages]
    assert [d["text"] for d in docs] == [t for t in expected if t.strip()]


def test_config_errors_and_dryrun(tmp_path, warc_file, capsys):
    assert warc(tmp_path, "--linearizer", "nope") == 1
    assert "valid choices: resiliparse, trafilatura" in capsys.readouterr().err
    assert warc(tmp_path, "--linearizer_options.no_such_option", "1") == 1
    assert main(["warc", "--documents", warc_file, "--destination", str(tmp_path / "o")]) == 1
    assert "source_name is required" in capsys.readouterr().err
    assert warc(tmp_path, "--dryrun") == 0
    assert "pages.jsonl.gz" in capsys.readouterr().out and not (tmp_path / "out").exists()


def test_warc_on_s3(tmp_path, s3_client, warc_file):
    s3_client.create_bucket(Bucket="crawl")
    s3_client.upload_file(warc_file, "crawl", "cc/pages.warc.gz")
    assert warc(tmp_path, documents="s3://crawl/cc/*.warc.gz", destination="s3://crawl/documents/web") == 0
    body = s3_client.get_object(Bucket="crawl", Key="documents/web/pages.jsonl.gz")["Body"].read()
    remote = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    assert warc(tmp_path) == 0
    local = read_docs(tmp_path / "out" / "documents" / "web" / "pages.jsonl.gz")
    assert [d["metadata"].pop("warc_file") for d in remote] == ["s3://crawl/cc/pages.warc.gz"] * len(remote)
    for d in local:
        d["metadata"].pop("warc_file")
    assert remote == local
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket="crawl")["Contents"]]
    assert "documents/web/.pages.jsonl.gz.done.json" in keys and not [k for k in keys if ".tmp-" in k]


def test_destination_among_the_inputs_is_refused(tmp_path, warc_file, capsys):
    assert warc(tmp_path, destination=str(tmp_path / "warc")) == 1
    assert "directory holding the input" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "warc")) == ["pages.warc.gz"]


BAD_KINDS = {  # kind → (the bad record's URL in bad_records(), counter, is bad data rather than a filter)
    "broken_http_header": ("broken-header", "broken_http_header", True),
    "undecodable": ("undecodable", "undecodable", True),
    "not_html": ("paper.pdf", "not_html", False),
    "empty_page": ("empty.html", "empty_page", False),
    "not_200": ("missing.html", "http_status_not_200", False),
}


@pytest.mark.parametrize("policy", ["fail", "skip_record", "skip_file"])
@pytest.mark.parametrize("kind", [*BAD_KINDS, "corrupt_gzip"])
def test_each_bad_input_under_each_policy(tmp_path, pages, kind, policy, capsys):
    if kind == "corrupt_gzip":
        write_warc(str(tmp_path / "warc" / "one.warc.gz"), pages[:4], corrupt_after=2)
        bad_data, counter = True, "corrupt_gzip"
    else:
        url_part, counter, bad_data = BAD_KINDS[kind]
        bad = [r for r in bad_records() if url_part in r.url]
        write_warc(str(tmp_path / "warc" / "one.warc.gz"), pages[:2] + bad + pages[2:4])
    code = warc(tmp_path, "--on_error", policy)
    out = tmp_path / "out" / "documents" / "web" / "one.jsonl.gz"
    if not bad_data:  # filtered: counted under every policy, never an error
        assert code == 0 and len(read_docs(out)) == 4 and summary(tmp_path)["extra"]["records"][counter] == 1
    elif policy == "fail":
        err = capsys.readouterr().err
        assert code == 1 and re.search(r"one\.warc\.gz: byte \d+: ", err) and not out.exists()
    elif policy == "skip_record":
        assert code == 0 and len(read_docs(out)) == 4 and summary(tmp_path)["extra"]["records"][counter] == 1
    else:
        assert code == 0 and not out.exists() and summary(tmp_path)["files_skipped"] == 1
