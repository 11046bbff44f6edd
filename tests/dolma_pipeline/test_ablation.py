"""Data ablations: the variant planner (shared stages once, a variant's changed stage and what follows),
and the side-by-side comparison with a seed-noise estimate."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from dolma_pipeline.ablation import Run, VariantConfig, plan_runs
from dolma_pipeline.ablation_report import compare, write_report
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.pipeline import StageConfig, load_pipeline, run_pipeline
from tests.chromium import images_of, render_in_headless_chromium

W = "/w"


def _stages():
    return [
        StageConfig("tag", "tag", {"documents": [f"{W}/corpus/documents/*"]}, f"{W}/corpus/attributes/q"),
        StageConfig("mix_eval", "mix", {"streams": [{"output": {"path": f"{W}/eval"}}]}, f"{W}/eval"),
        StageConfig("mix_train", "mix", {"streams": [{"output": {"path": f"{W}/mixed/train"}, "rules": ["a"]}]},
                    f"{W}/mixed"),
        StageConfig("tokenize", "tokenize", {"documents": [f"{W}/mixed/train/*.jsonl.gz"],
                                             "destination": f"{W}/tokens"}, f"{W}/tokens", [f"{W}/mixed"]),
        StageConfig("train", "train", {"overrides": {"data.train.0.paths": [f"{W}/tokens/part-*.npy"],
                                                     "evaluation.documents": [f"{W}/eval/*.jsonl.gz"],
                                                     "checkpoint.save_folder": f"{W}/train"}}, f"{W}/train"),
        StageConfig("report", "report", {"workdir": W}, f"{W}/report"),
    ]


def test_plan_shares_the_prefix_and_moves_what_follows_the_change() -> None:
    runs = plan_runs(_stages(), W, [VariantConfig("strict", {"mix_train": {"streams": [
        {"output": {"path": f"{W}/mixed/train"}, "rules": ["a", "b"]}]}})],
                     [11, 12])
    assert [r.name for r in runs] == ["baseline", "baseline-seed12", "strict"]
    base, seed2, strict = runs
    assert base.stages[4].config["overrides"]["trainer.seed"] == 11
    # the second seed reruns only the train stage (and later), under its own directory
    assert [s.name for s in seed2.stages] == ["tag", "mix_eval", "mix_train", "tokenize", "baseline-seed12__train"]
    t = seed2.stages[-1]
    assert t.config["overrides"]["trainer.seed"] == 12 and t.output == f"{W}/ablation/baseline-seed12/train"
    assert t.config["overrides"]["data.train.0.paths"] == [f"{W}/tokens/part-*.npy"]  # shared tokens
    # the variant shares tag and the fixed eval split, and moves mix_train and everything after it
    assert [s.name for s in strict.stages] == ["tag", "mix_eval", "strict__mix_train", "strict__tokenize",
                                               "strict__train"]
    mix, tok, train = strict.stages[2:]
    assert mix.config["streams"][0]["output"]["path"] == f"{W}/ablation/strict/mixed/train"
    assert tok.config["documents"] == [f"{W}/ablation/strict/mixed/train/*.jsonl.gz"] and tok.inputs == [
        f"{W}/ablation/strict/mixed"]
    assert train.config["overrides"]["evaluation.documents"] == [f"{W}/eval/*.jsonl.gz"]  # unchanged: shared
    assert train.config["overrides"]["checkpoint.save_folder"] == f"{W}/ablation/strict/train"
    assert train.config["overrides"]["trainer.seed"] == 11
    # the patch applies to the variant only; the baseline's stage objects are untouched
    assert base.stages[2].config["streams"][0]["rules"] == ["a"]
    # the prefix-move respects path components: /w/train is not a prefix of /w/training
    assert mix.output == f"{W}/ablation/strict/mixed"


@pytest.mark.parametrize("variants,match", [
    ([VariantConfig("x", {"nope": {}})], "unknown stages"),
    ([VariantConfig("x", {})], "no stage is changed"),
    ([VariantConfig("x", {"tag": {}}), VariantConfig("x", {"tag": {}})], "used twice"),
    ([VariantConfig("../x", {"tag": {}})], "path separator"),
])
def test_bad_variants_are_config_errors(variants, match) -> None:
    with pytest.raises(ConfigError, match=match):
        plan_runs(_stages(), W, variants, [1])


def _metrics(folder, **values) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.jsonl"), "w") as fh:
        fh.write(json.dumps({"step": 1, "loss": 3.0}) + "\n")
        fh.write(json.dumps({"step": 2, "loss": 2.0, **values}) + "\n")


def test_compare_marks_differences_beyond_seed_noise(tmp_path) -> None:
    def train_run(name, variant, seed, bpb, acc):
        folder = tmp_path / name
        _metrics(folder, **{"eval/ppl/web/bits_per_byte": bpb, "eval/task/ns/acc": acc})
        return Run(name, variant, seed, [StageConfig("train", "train", {}, str(folder))])

    runs = [train_run("baseline", "baseline", 1, 1.50, 0.30), train_run("b2", "baseline", 2, 1.52, 0.40),
            train_run("better", "better", 1, 1.40, 0.36)]
    result = compare(runs)
    assert result["baseline"]["eval/ppl/web/bits_per_byte"]["mean"] == pytest.approx(1.51)
    bpb = result["variants"]["better"]["eval/ppl/web/bits_per_byte"]
    assert bpb["diff"] == pytest.approx(-0.11) and bpb["beyond_noise"] is True  # std 0.014: 0.11 > 2 std
    acc = result["variants"]["better"]["eval/task/ns/acc"]
    assert acc["beyond_noise"] is False  # std 0.071: 0.01 is noise

    page = write_report(runs, str(tmp_path / "ablation"))
    assert images_of(tmp_path / "ablation" / "index.html") == ["bits_per_byte.png", "downstream.png",
                                                               "differences.png"]
    assert "-0.11 <b>*</b>" in open(page).read() and "+0.01 (noise)" in open(page).read()
    render_in_headless_chromium(tmp_path / "ablation" / "index.html", height=2400)


def test_pipeline_runs_shared_stages_once_and_reruns_only_changed_variants(corpus) -> None:
    cfg = corpus.parent / "ablation.yaml"

    def write(threshold):
        stream = {"name": "train", "documents": ["{workdir}/corpus/documents/**/*"], "attributes": ["q"],
                  "rules": [{"attribute": "q__char_length_v1__length", "op": "lt", "value": 10, "name": "short"}],
                  "output": {"path": "{workdir}/mixed/train"}}
        stages = [
            {"name": "tag", "command": "tag", "inputs": ["{workdir}/corpus/documents"],
             "output": "{workdir}/corpus/attributes/q",
             "config": {"documents": ["{workdir}/corpus/documents/**/*"], "experiment": "q",
                        "taggers": ["char_length_v1"]}},
            {"name": "mix", "command": "mix", "inputs": ["{workdir}/corpus/attributes/q"],
             "output": "{workdir}/mixed", "config": {"streams": [stream]}},
        ]
        variant_stream = {**stream, "rules": [{**stream["rules"][0], "value": threshold}]}
        cfg.write_text(yaml.safe_dump({"workdir": str(corpus.parent), "processes": 1, "stages": stages,
                                       "variants": [{"name": "long_only", "stages": {"mix": {
                                           "streams": [variant_stream]}}}]}))

    write(100)
    assert run_pipeline(load_pipeline(str(cfg))) == ["tag", "mix", "long_only__mix"]
    assert run_pipeline(load_pipeline(str(cfg))) == []
    write(120)
    assert run_pipeline(load_pipeline(str(cfg))) == ["long_only__mix"]
    result = json.loads((corpus.parent / "ablation" / "ablation.json").read_text())
    kept = {name: figs["documents kept"] for name, figs in result["runs"].items()}
    assert kept["baseline"] == 105 and 0 < kept["long_only"] < kept["baseline"]
    assert (corpus.parent / "ablation" / "long_only" / "mixed" / "train").is_dir()
    assert "long_only" in (corpus.parent / "ablation" / "index.html").read_text()
