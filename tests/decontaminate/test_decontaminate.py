"""`dolma decontaminate` end to end on small corpora: both modes, exactness, Bloom option, bad input, resume."""

from __future__ import annotations

import json
import os
import subprocess
import unicodedata

import pytest

from dolma_pipeline.errors import ConfigError, DataFormatError, InputNotFoundError
from tests.conftest import DOLMA, REPO
from tests.decontaminate.conftest import (
    ATTR,
    CLEAN,
    EVAL,
    NGRAM_ATTR,
    SHORT_EVAL,
    attribute_file,
    base_config,
    flagged_texts,
    read_rows,
    run_decon,
    write_corpus,
)

PLANTED = {
    "verbatim": EVAL[0],
    "case": EVAL[1].upper(),
    "whitespace": "   " + EVAL[3].replace(" ", " \t ") + "  ",
    "punctuation": "» " + EVAL[0].rstrip(".") + "?!",
    "nfd": unicodedata.normalize("NFD", EVAL[2]),
}


def training_docs() -> list[dict]:
    docs = [{"id": f"plant-{kind}", "text": f"{CLEAN[0]}\n{text}\n{CLEAN[1]}"} for kind, text in PLANTED.items()]
    twelve = " ".join(EVAL[3].split()[:12])  # the first 12 words of an evaluation paragraph
    docs += [
        {"id": "short-eval", "text": f"{CLEAN[2]}\n{SHORT_EVAL}"},  # below the 13-word threshold
        {"id": "twelve-words", "text": twelve},
        {"id": "inside", "text": f"Preface: {EVAL[0]}"},  # a paragraph that contains one is not one
        {"id": "clean", "text": "\n".join(CLEAN)},
        {"id": "empty", "text": ""},
    ]
    return docs


@pytest.fixture
def training(tmp_path):
    write_corpus(tmp_path / "train", training_docs())
    return tmp_path / "train"


def by_id(root) -> dict[str, tuple[dict, dict]]:
    rows = read_rows(attribute_file(root))
    docs = training_docs()
    assert [r["id"] for r in rows] == [d["id"] for d in docs]  # one row per document, in order
    return {d["id"]: (d, r) for d, r in zip(docs, rows, strict=True)}


def summary(root) -> dict:
    with open(os.path.join(root, "attributes", "decon", "dolma_decontaminate.summary.json")) as fh:
        return json.load(fh)["summary"]["extra"]["decontamination"]


def test_paragraph_mode_finds_planted_paragraphs_and_nothing_else(training, eval_set):
    assert run_decon([], base_config(str(training / "documents"), eval_set)) == 0
    rows = by_id(training)
    for kind, text in PLANTED.items():
        doc, row = rows[f"plant-{kind}"]
        assert flagged_texts(doc, row) == [text + "\n"], kind  # the paragraph with its separator
        assert row["attributes"][f"{ATTR}__heldout"] == row["attributes"][ATTR]
        assert row["attributes"][f"{ATTR}__document"] == [[0, len(doc["text"]), 1.0]]
    for clean in ("short-eval", "twelve-words", "inside", "clean", "empty"):
        attributes = rows[clean][1]["attributes"]
        assert attributes == {ATTR: [], f"{ATTR}__heldout": [], f"{ATTR}__document": []}, clean
    report = summary(training)
    assert report["per_set"]["heldout"]["documents_contaminated"] == len(PLANTED)
    assert report["per_set"]["heldout"]["paragraph_spans"] == len(PLANTED)
    assert report["per_set"]["heldout"]["eval_paragraphs_indexed"] == len(EVAL)
    assert report["exactness"] == {"index": "exact", "verified": True, "false_positive_rate": 0.0,
                                   "note": report["exactness"]["note"]}


def test_a_clean_corpus_has_no_hits(tmp_path, eval_set):
    write_corpus(tmp_path / "train", [{"id": f"c{i}", "text": "\n".join(CLEAN[i:] + CLEAN[:i])} for i in range(3)])
    assert run_decon([], base_config(str(tmp_path / "train" / "documents"), eval_set,
                                     ngrams={"attribute_name": NGRAM_ATTR})) == 0
    for row in read_rows(attribute_file(tmp_path / "train")):
        assert not any(row["attributes"].values())
    assert summary(tmp_path / "train")["per_set"]["any"]["documents_contaminated"] == 0


def test_ngram_mode_marks_the_shared_text(tmp_path, eval_set):
    words = EVAL[3].split()  # 16 words
    docs = [
        {"id": "shares-13", "text": "Intro. " + " ".join(words[:13]) + " and then something else entirely"},
        {"id": "shares-12", "text": "Intro. " + " ".join(words[:12]) + " and then something else entirely"},
        {"id": "shares-13-edited", "text": "intro " + " ".join(words[2:15]).upper().replace(" ", ",  ") + " end"},
        {"id": "two-windows", "text": EVAL[1] + " Also: " + EVAL[0]},
    ]
    write_corpus(tmp_path / "train", docs)
    config = base_config(str(tmp_path / "train" / "documents"), eval_set, paragraphs=None,
                         ngrams={"attribute_name": NGRAM_ATTR, "n": 13})
    assert run_decon([], config) == 0
    rows = {r["id"]: r for r in read_rows(attribute_file(tmp_path / "train"))}
    text = docs[0]["text"]
    assert [text[s:e] for s, e, _ in rows["shares-13"]["attributes"][NGRAM_ATTR]] == [" ".join(words[:13])]
    assert rows["shares-12"]["attributes"][NGRAM_ATTR] == []
    assert rows["shares-12"]["attributes"][f"{NGRAM_ATTR}__document"] == []
    assert len(rows["shares-13-edited"]["attributes"][NGRAM_ATTR]) == 1
    spans = rows["two-windows"]["attributes"][NGRAM_ATTR]
    assert [docs[3]["text"][s:e] for s, e, _ in spans] == [EVAL[1].rstrip("."), EVAL[0].rstrip(".")]
    assert rows["two-windows"]["attributes"][f"{NGRAM_ATTR}__document"] == [[0, len(docs[3]["text"]), 1.0]]


def test_ngrams_in_more_documents_than_the_cap_are_ignored(tmp_path, eval_set):
    common = " ".join(EVAL[1].split()[:13])
    docs = [{"id": f"d{i}", "text": f"{CLEAN[i % 3]} {common}"} for i in range(4)]
    docs.append({"id": "rare", "text": EVAL[3]})
    write_corpus(tmp_path / "train", docs)
    for cap, expected in ((3, {"rare"}), (4, {"d0", "d1", "d2", "d3", "rare"}), (0, {"d0", "d1", "d2", "d3", "rare"})):
        config = base_config(str(tmp_path / "train" / "documents"), eval_set, paragraphs=None,
                             ngrams={"attribute_name": NGRAM_ATTR, "max_document_frequency": cap})
        assert run_decon(["--ignore_existing", "true"], config) == 0
        rows = read_rows(attribute_file(tmp_path / "train"))
        assert {r["id"] for r in rows if r["attributes"][NGRAM_ATTR]} == expected, cap


def test_both_modes_in_one_run_and_several_evaluation_sets(training, tmp_path, eval_set):
    other = write_corpus(tmp_path / "other", [{"id": "o", "text": EVAL[1]}], "other.jsonl.gz")
    config = base_config(str(training / "documents"), eval_set, ngrams={"attribute_name": NGRAM_ATTR})
    config["evaluation"].append({"name": "other", "documents": [other]})
    assert run_decon([], config) == 0
    rows = by_id(training)
    attributes = rows["plant-case"][1]["attributes"]
    assert attributes[f"{ATTR}__other"] == attributes[f"{ATTR}__heldout"] == attributes[ATTR] != []
    assert rows["plant-verbatim"][1]["attributes"][f"{ATTR}__other"] == []
    assert attributes[NGRAM_ATTR] and attributes[f"{NGRAM_ATTR}__other"]
    assert rows["inside"][1]["attributes"][NGRAM_ATTR]  # n-grams find what the paragraph mode cannot
    per_set = summary(training)["per_set"]
    assert per_set["other"]["documents_contaminated"] == 1
    assert per_set["heldout"]["documents_contaminated"] == len(PLANTED) + 1


def test_bloom_option_finds_the_same_and_states_its_false_positive_rate(training, eval_set):
    config = base_config(str(training / "documents"), eval_set, ngrams={"attribute_name": NGRAM_ATTR})
    assert run_decon([], config) == 0
    exact = read_rows(attribute_file(training))
    config["bloom_filter"] = {"desired_false_positive_rate": 1e-9}
    assert run_decon([], config) == 0
    assert read_rows(attribute_file(training)) == exact
    exactness = summary(training)["exactness"]
    assert exactness["index"] == "bloom"
    bloom = exactness["paragraphs.heldout"]
    assert 0 < bloom["false_positive_rate"] < 1e-6 and bloom["probes"] > 0
    assert bloom["expected_false_positives"] == pytest.approx(bloom["false_positive_rate"] * bloom["probes"])
    # a filter far too small flags clean paragraphs: the rate it states says so
    config["bloom_filter"] = {"size_in_bytes": 1}
    assert run_decon([], config) == 0
    assert summary(training)["exactness"]["paragraphs.heldout"]["false_positive_rate"] >= 0.1


def test_same_bytes_for_one_and_two_processes_and_reruns_resume(tmp_path, eval_set, capsys):
    docs = training_docs()
    for part in range(3):
        write_corpus(tmp_path / "train", docs[part::3], f"part-{part}.jsonl.gz")
    config = base_config(str(tmp_path / "train" / "documents"), eval_set, ngrams={"attribute_name": NGRAM_ATTR})
    outputs = []
    for processes in (1, 2):
        assert run_decon(["--processes", str(processes), "--executor", "local", "--ignore_existing", "true"], config) == 0
        outputs.append({p: open(attribute_file(tmp_path / "train", f"part-{p}.jsonl.gz"), "rb").read() for p in range(3)})
    assert outputs[0] == outputs[1]
    capsys.readouterr()
    assert run_decon(["--processes", "2", "--executor", "local"], config) == 0
    assert "3 already done" in capsys.readouterr().out


def test_bad_training_line_names_file_and_line(tmp_path, eval_set):
    path = write_corpus(tmp_path / "train", [{"id": "a", "text": EVAL[0]}])
    import gzip

    with gzip.open(path, "ab") as fh:
        fh.write(b'{"id": "b", "text": \n')
    config = base_config(str(tmp_path / "train" / "documents"), eval_set)
    with pytest.raises(DataFormatError, match=r"part-0000.jsonl.gz:2"):
        run_decon([], config)
    assert run_decon(["--on_error", "skip_line"], config) == 0
    rows = read_rows(attribute_file(tmp_path / "train"))
    assert [r["id"] for r in rows] == ["a"] and rows[0]["attributes"][ATTR]


def test_bad_evaluation_input_is_an_error(tmp_path, eval_set):
    write_corpus(tmp_path / "train", [{"id": "a", "text": EVAL[0]}])
    training = str(tmp_path / "train" / "documents")
    with pytest.raises(InputNotFoundError, match="nothing-here"):
        run_decon([], base_config(training, str(tmp_path / "nothing-here" / "*.jsonl.gz")))
    bad = write_corpus(tmp_path / "bad", [{"id": "x", "text": EVAL[0]}], "bad.jsonl.gz")
    with open(bad, "wb") as fh:
        fh.write(b"not gzip at all")
    with pytest.raises(DataFormatError, match="bad.jsonl.gz"):
        run_decon([], base_config(training, bad))
    with pytest.raises(ConfigError, match="could not be read"):  # skipping an evaluation file would hide contamination
        run_decon(["--on_error", "skip_file"], base_config(training, bad))


@pytest.mark.parametrize("change, message", [
    ({"dedupe": {"name": "decon", "paragraphs": {}}}, "attribute_name is required"),
    ({"dedupe": {"name": "decon"}}, "needs dedupe.paragraphs, dedupe.ngrams or both"),
    ({"evaluation": []}, "no evaluation sets"),
    ({"evaluation": [{"name": "bad name", "documents": ["x"]}]}, "must be non-empty"),
    ({"evaluation": [{"name": "a", "documents": ["x"]}, {"name": "a", "documents": ["y"]}]}, "unique"),
    ({"dedupe": {"name": "decon", "paragraphs": {"attribute_name": "a", "min_words": 0}}}, "min_words"),
    ({"bloom_filter": {"desired_false_positive_rate": 2}}, "desired_false_positive_rate"),
    ({"dedupe": {"name": "decon", "paragraphs": {"attribute_name": "a"}, "typo": 1}}, "unknown key dedupe.typo"),
])
def test_config_errors(tmp_path, eval_set, change, message):
    config = base_config(str(tmp_path), eval_set)
    config.update(change)
    with pytest.raises(ConfigError, match=message):
        run_decon([], config)


def test_cli_and_mix_drop_contaminated_documents(training, eval_set, tmp_path):
    """The command through `dolma`, then `dolma mix` with the shipped rule: contaminated documents go."""
    env = {**os.environ, "PYTHONPATH": REPO, "DOLMA_NO_PROGRESS": "1"}
    config = tmp_path / "decon.yaml"
    config.write_text(json.dumps(base_config(str(training / "documents"), eval_set)))
    proc = subprocess.run([*DOLMA, "-c", str(config), "decontaminate"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "heldout: 5 documents contaminated" in proc.stdout
    mix = tmp_path / "mix.yaml"
    mix.write_text(open(os.path.join(REPO, "configs", "mix", "decontaminate.yaml")).read()
                   .replace("ROOT", str(training)))
    proc = subprocess.run([*DOLMA, "-c", str(mix), "mix", "--processes", "1"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    kept = {r["id"] for r in read_rows(str(training / "decontaminated" / "documents" / "documents-0000.jsonl.gz"))}
    assert kept == {"short-eval", "twelve-words", "inside", "clean", "empty"}
    cut = read_rows(str(training / "decontaminated" / "spans_cut" / "spans_cut-0000.jsonl.gz"))
    assert len(cut) == len(training_docs())
    assert not any(EVAL[0] in r["text"] for r in cut if r["id"] == "plant-verbatim")
    assert next(r for r in cut if r["id"] == "plant-case")["text"] == f"{CLEAN[0]}\n{CLEAN[1]}"


def test_report_section_shows_counts_and_what_was_found(training, eval_set):
    from dolma_pipeline.decontaminate.report import section

    config = base_config(str(training / "documents"), eval_set)
    assert run_decon([], config) == 0
    page = section(config)
    assert "<td>heldout</td><td>5</td>" in page  # documents contaminated
    assert "Exact index" in page and EVAL[0][:40] in page
    config["documents"] = [str(training / "moved-away" / "*.jsonl.gz")]
    assert "not available" in section(config)


def test_a_killed_run_resumes_to_the_same_bytes(tmp_path, eval_set, monkeypatch, capsys):
    from dolma_pipeline.decontaminate import command

    docs = training_docs()
    for name in ("clean_run", "killed_run"):
        for part in range(3):
            write_corpus(tmp_path / name, docs[part::3], f"part-{part}.jsonl.gz")
    clean = base_config(str(tmp_path / "clean_run" / "documents"), eval_set)
    assert run_decon(["--debug", "true"], clean) == 0
    real, calls = command.probe_file, []

    def killed_on_second(shard):
        calls.append(shard)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")
        return real(shard)

    monkeypatch.setattr(command, "probe_file", killed_on_second)
    killed = base_config(str(tmp_path / "killed_run" / "documents"), eval_set)
    with pytest.raises(KeyboardInterrupt):
        run_decon(["--debug", "true"], killed)
    monkeypatch.setattr(command, "probe_file", real)
    capsys.readouterr()
    assert run_decon(["--debug", "true"], killed) == 0
    assert "1 already done" in capsys.readouterr().out
    for part in range(3):
        name = f"part-{part}.jsonl.gz"
        assert open(attribute_file(tmp_path / "killed_run", name), "rb").read() == \
            open(attribute_file(tmp_path / "clean_run", name), "rb").read()
