"""The pipeline runner: skip up-to-date stages, rerun a changed stage and what follows, record lineage."""

from __future__ import annotations

import yaml

from dolma_pipeline.lineage import trace
from dolma_pipeline.pipeline import load_pipeline, run_pipeline


def _write(path, first_taggers, second_taggers):
    stages = [
        {"name": "first", "command": "tag", "inputs": ["{workdir}/corpus/documents"],
         "output": "{workdir}/corpus/attributes/one",
         "config": {"documents": ["{workdir}/corpus/documents/**/*"], "experiment": "one",
                    "taggers": first_taggers, "debug": True}},
        {"name": "second", "command": "tag", "inputs": ["{workdir}/corpus/attributes/one"],
         "output": "{workdir}/corpus/attributes/two",
         "config": {"documents": ["{workdir}/corpus/documents/**/*"], "experiment": "two",
                    "taggers": second_taggers, "debug": True}},
    ]
    path.write_text(yaml.safe_dump({"workdir": str(path.parent), "stages": stages}))


def test_skip_and_rerun_only_changed_stage_and_after(corpus):
    config_path = corpus.parent / "pipeline.yaml"
    _write(config_path, ["char_length_v1"], ["random_number_v1"])
    assert run_pipeline(load_pipeline(str(config_path))) == ["first", "second"]
    assert run_pipeline(load_pipeline(str(config_path))) == []
    _write(config_path, ["char_length_v1"], ["whitespace_tokenizer_v1"])
    assert run_pipeline(load_pipeline(str(config_path))) == ["second"]
    _write(config_path, ["whitespace_tokenizer_v1"], ["whitespace_tokenizer_v1"])
    assert run_pipeline(load_pipeline(str(config_path))) == ["first", "second"]
    chain = trace(str(corpus / "attributes" / "two"))
    assert [record.stage for record in chain] == ["second", "first"]
    assert chain[-1].inputs == [str(corpus / "documents")]
