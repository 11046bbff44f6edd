"""`dolma train-classifier`: documents with labels to a fastText classifier, its model card and PR curves.

1. Examples: every input file becomes one example file under `{output}/work/examples/` (parallel,
   resumable shards on the shared executor), units prepared as the tagger prepares them.
2. Sampling and shuffling (`balance.py`): deterministic, out of core, into `work/train.txt` and
   `work/valid.txt` in fastText's format.
3. fastText's `train_supervised` with the given hyperparameters, in a child process (`fit.py` says
   why), deterministic with `thread: 1` (with more threads fastText's Hogwild updates race, and the
   card says `deterministic: false`), then `quantize` to `model.ftz` with `--quantize`.
4. Validation (`card.py`) and the card: `model_card.json`, `pr_curve.png`.

A rerun with the same config and data reuses finished example files and, when the card's fingerprint
matches, the model itself; `--ignore_existing` redoes everything.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

import orjson

from dolma_pipeline import io
from dolma_pipeline.classifier import balance, card
from dolma_pipeline.classifier.config import TrainClassifierConfig, check_label
from dolma_pipeline.classifier.dataset import ExampleShard, write_examples
from dolma_pipeline.classifier.fit import fit
from dolma_pipeline.classifier.text import PREPARATION
from dolma_pipeline.config import fingerprint, to_dict
from dolma_pipeline.errors import ConfigError, DolmaError
from dolma_pipeline.executor import read_marker, run_shards
from dolma_pipeline.hashing import file_sha256
from dolma_pipeline.safety import check_outputs

log = logging.getLogger(__name__)

Config = TrainClassifierConfig
CARD = "model_card.json"
PR_CURVE = "pr_curve.png"
_EXECUTION_KEYS = ("processes", "executor", "ray_address", "debug", "ignore_existing")


def plan(config: TrainClassifierConfig) -> list[ExampleShard]:
    """One shard per input file, in a fixed order (labels as given, files sorted within each glob list)."""
    from dolma_pipeline.tag import attributes_path

    examples = os.path.join(config.output, "work", "examples")
    common = dict(mode=config.mode, seed=config.seed, validation_fraction=config.validation_fraction,
                  min_length=config.min_length, on_error=config.on_error)
    fp = fingerprint([PREPARATION, common, config.labels, to_dict(config)["label_field"],
                      to_dict(config)["label_attribute"]])
    shards: list[ExampleShard] = []
    if config.labels:
        owner: dict[str, str] = {}
        for label, globs in config.labels.items():
            for path in io.expand_paths(globs):
                if path in owner and owner[path] != label:
                    raise ConfigError(f"{path} is listed under labels {owner[path]!r} and {label!r}")
                owner[path] = label
        for i, (path, label) in enumerate(owner.items()):
            out = os.path.join(examples, f"{i:05d}-{_safe_name(path)}.tsv")
            shards.append(ExampleShard(input=path, output=out, fingerprint=fp, label=label, **common))
        return shards
    attribute = config.label_attribute
    experiment = None
    if attribute is not None:
        experiment = attribute.experiment or attribute.name.split("__", 1)[0]
    for i, path in enumerate(io.expand_paths(config.documents)):
        out = os.path.join(examples, f"{i:05d}-{_safe_name(path)}.tsv")
        shards.append(ExampleShard(
            input=path, output=out, fingerprint=fp, label_field=config.label_field, label_attribute=attribute,
            attribute_file=attributes_path(path, experiment) if experiment else None, **common))
    return shards


def _safe_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.rstrip("/").rsplit("/", 1)[-1])[:80]


def _label_counts(summary_extra: dict[str, Any], config: TrainClassifierConfig) -> tuple[dict, dict]:
    train = dict(summary_extra.get("train_units", {}))
    valid = dict(summary_extra.get("valid_units", {}))
    declared = config.declared_labels()
    for label in declared:
        train.setdefault(label, 0)
        valid.setdefault(label, 0)
    found = sorted(set(train) | set(valid))
    for label in found:
        check_label(label)
    missing = [label for label in found if train.get(label, 0) == 0]
    if missing:
        raise DolmaError(f"label(s) {missing} have no training units (units per label: {train}); "
                         "check their documents, the label source and validation_fraction")
    if len(found) < 2:
        raise DolmaError(f"only one class in the data ({found or 'no labelled units at all'}); "
                         "a classifier needs at least two labels")
    return ({k: train[k] for k in sorted(train)}, {k: valid.get(k, 0) for k in sorted(train)})


def _fasttext_args(config: TrainClassifierConfig) -> dict[str, Any]:
    return to_dict(config.fasttext)


def run(config: TrainClassifierConfig) -> int:
    if io.is_remote(config.output):
        raise ConfigError(f"output {config.output} must be a local directory (fastText reads and writes local files)")
    output = os.path.abspath(config.output)
    config.output = output
    shards = plan(config)
    check_outputs([s.input for s in shards], [], [output], what="classifier output")
    start = time.perf_counter()
    summary = run_shards(write_examples, shards, processes=config.processes, ray_address=config.ray_address,
                         debug=config.debug, ignore_existing=config.ignore_existing, desc="examples",
                         executor=config.executor)
    print(summary.render("dolma train-classifier: examples"))
    if summary.files_skipped and config.on_error == "fail":
        raise DolmaError("files were skipped; see above")
    train_counts, valid_counts = _label_counts(summary.extra, config)
    files = []
    for shard in shards:
        stats = read_marker(shard) or {}
        if stats.get("skipped_file"):
            continue
        files.append({"path": io.canonical_path(shard.input), "label": shard.label,
                      "documents": stats.get("documents", 0), "sha256_of_ids_and_texts": stats.get("digest"),
                      "train_units": stats.get("train_units", {}), "valid_units": stats.get("valid_units", {})})
    settings = {k: v for k, v in to_dict(config).items() if k not in _EXECUTION_KEYS}
    run_fp = fingerprint([settings, [f["sha256_of_ids_and_texts"] for f in files], PREPARATION])
    model_name = "model.ftz" if config.quantize else "model.bin"
    card_path = os.path.join(output, CARD)
    if not config.ignore_existing and _card_matches(card_path, run_fp, os.path.join(output, model_name)):
        print(f"dolma train-classifier: {os.path.join(output, model_name)} is up to date (card {card_path})")
        return 0

    work = os.path.join(output, "work")
    keep = balance.keep_probabilities(train_counts, config.balance, config.max_examples_per_label)
    example_files = [s.output for s in shards if os.path.exists(s.output)]
    example_bytes = sum(os.path.getsize(p) for p in example_files)
    train_path, valid_path = os.path.join(work, "train.txt"), os.path.join(work, "valid.txt")
    kept_train, kept_valid = balance.build_files(example_files, train_path, valid_path, keep,
                                                 config.shuffle_bucket_bytes, example_bytes, work)
    print(f"training units kept per label: {kept_train}; validation units: {kept_valid}")

    from fasttext.FastText import _FastText

    if config.fasttext.thread != 1:
        log.warning("fastText with %d threads is not deterministic; use thread: 1 for identical models",
                    config.fasttext.thread)
    quantize = None
    if config.quantize:
        quantize = {"retrain": config.quantize_retrain, "cutoff": config.quantize_cutoff, "qnorm": True,
                    "thread": config.fasttext.thread, "verbose": config.fasttext.verbose}
    trained = time.perf_counter()
    fit(train_path, os.path.join(output, "model.bin"), _fasttext_args(config), quantize)
    train_seconds = time.perf_counter() - trained
    names = ["model.bin"] + (["model.ftz"] if config.quantize else [])
    validation = {}
    for name in names:
        model = _FastText(os.path.join(output, name))
        labels, truth, values = card.score_file(model, valid_path)
        validation[name] = card.metrics(labels, truth, values)
        fasttext_test = _fasttext_test(model, valid_path)
    if len(truth):
        card.plot_pr_curves(labels, truth, values, os.path.join(output, PR_CURVE),
                            f"{model_name}: validation precision-recall ({config.mode} units)")
    from dolma_pipeline.lineage import code_version

    record = {
        "card_version": 1,
        "fingerprint": run_fp,
        "model": {name: {"path": os.path.join(output, name), "bytes": os.path.getsize(os.path.join(output, name)),
                         "sha256": file_sha256(os.path.join(output, name))} for name in names},
        "model_path": os.path.join(output, model_name),
        "labels": labels,
        "mode": config.mode,
        "preparation": PREPARATION,
        "tagger": {"name": "fasttext_classifier_v1",
                   "options": {"model_path": os.path.join(output, model_name), "mode": config.mode}},
        "data": {"files": files, "train_file_sha256": file_sha256(train_path),
                 "valid_file_sha256": file_sha256(valid_path)},
        "label_counts": {"train_units": train_counts, "valid_units": valid_counts,
                         "keep_probability": keep, "train_units_kept": kept_train,
                         "valid_units_kept": kept_valid},
        "skipped": {k: summary.extra.get(k, 0) for k in ("unlabelled_documents", "empty_documents", "short_units")}
                   | {"lines": summary.lines_skipped, "files": summary.files_skipped, "errors": summary.errors[:50]},
        "fasttext": {"package_version": _version("fasttext-numpy2-wheel") or _version("fasttext"),
                     "deterministic": config.fasttext.thread == 1, "args": _fasttext_args(config),
                     "train_seconds": round(train_seconds, 3),
                     "test_on_validation": fasttext_test},
        "validation": validation[model_name],
        "validation_by_model": validation if len(validation) > 1 else None,
        "config": to_dict(config),
        "code_version": code_version(),
        "seconds": round(time.perf_counter() - start, 3),
    }
    io.write_text(card_path, orjson.dumps(card.jsonable(record), option=orjson.OPT_INDENT_2).decode())
    _print_result(record)
    return 0


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _fasttext_test(model: Any, valid_path: str) -> dict[str, Any] | None:
    """fastText's own `test` on the validation file (precision and recall at 1), as a cross-check."""
    if os.path.getsize(valid_path) == 0:
        return None
    n, precision, recall = model.test(valid_path)
    return {"units": int(n), "precision_at_1": round(float(precision), 5), "recall_at_1": round(float(recall), 5)}


def _card_matches(card_path: str, run_fp: str, model_path: str) -> bool:
    try:
        existing = orjson.loads(io.read_text(card_path))
    except Exception:  # no card, or a broken one: train again
        return False
    return existing.get("fingerprint") == run_fp and os.path.exists(model_path)


def _print_result(record: dict[str, Any]) -> None:
    validation = record["validation"]
    print(f"model: {record['model_path']}  labels: {', '.join(record['labels'])}  mode: {record['mode']}")
    if validation.get("accuracy") is not None:
        print(f"validation: {validation['units']} units, accuracy {validation['accuracy']:.4f}")
        for label, m in validation["labels"].items():
            print(f"  {label:<20} P {m['precision']:.4f}  R {m['recall']:.4f}  F1 {m['f1']:.4f}  "
                  f"ROC AUC {m['roc_auc'] if m['roc_auc'] is not None else '-'}  support {m['support']}")
    print(f"card: {os.path.join(os.path.dirname(record['model_path']), CARD)}")
