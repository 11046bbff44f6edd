"""Evaluation: per-source perplexity (Paloma-style) and multiple-choice scoring, in the loop and offline."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from train_helpers import BYTE_EOS, REPO, byte_tokenizer_file, docstrings

from training.config import DataFormatError, EvaluationConfig, TaskConfig, TokenizerConfig
from training.eval.documents import TextEncoder, read_documents
from training.eval.model_io import load_for_eval
from training.eval.multiple_choice import MultipleChoiceTask, load_questions, prompt, shot_indices
from training.eval.perplexity import windows
from training.eval.suite import EvalSuite
from training.hf_export import export_hf
from training.trainer import build_trainer


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 20]


@pytest.fixture(scope="module")
def eval_files(tmp_path_factory):
    """Held-out documents of two sources, and a next-sentence task built from real docstrings."""
    root = tmp_path_factory.mktemp("evalfiles")
    texts = docstrings()
    held = texts[int(len(texts) * 0.9) :]
    docs = root / "docs"
    docs.mkdir()
    with open(docs / "held.jsonl", "w") as f:
        for i, t in enumerate(held[:24]):
            f.write(json.dumps({"id": f"d{i}", "text": t, "source": "short" if len(t) < 200 else "long"}) + "\n")
    questions = []
    pairs = [(a, b) for t in texts for a, b in zip(_sentences(t), _sentences(t)[1:]) if len(a) < 120 and len(b) < 50]
    rng = np.random.default_rng(0)
    for ctx, nxt in pairs[:16]:
        distract = [pairs[int(j)][1] for j in rng.choice(len(pairs), 3, replace=False) if pairs[int(j)][1] != nxt][:3]
        choices = [nxt, *distract]
        order = rng.permutation(len(choices))
        choices = [choices[k] for k in order]
        questions.append({"context": ctx, "choices": choices, "gold": int(np.argwhere(order == 0)[0][0])})
    task = root / "next_sentence.jsonl"
    task.write_text("".join(json.dumps(q) + "\n" for q in questions))
    tok = byte_tokenizer_file(root / "bytes.json")
    return {"docs": str(docs / "held.jsonl"), "task": str(task), "tokenizer": str(tok)}


def test_byte_tokenizer_is_the_token_files_scheme(eval_files) -> None:
    enc = TextEncoder(eval_files["tokenizer"])
    text = "Ünïcode and ASCII, tabs\tand\nnewlines"
    assert enc.encode(text) == list(text.encode())


@pytest.mark.parametrize("n,L,stride", [(1, 8, 4), (8, 8, 4), (9, 8, 4), (50, 8, 3), (50, 8, 8), (100, 16, 1)])
def test_windows_score_every_token_once_with_bounded_context(n, L, stride) -> None:
    seen = []
    for w in windows(n, L, stride):
        assert w.end - w.start <= L + 1 and w.start <= w.score_from - 1 < w.end
        seen.extend(range(w.score_from, w.end))
        if w.score_from > L:  # beyond the first window: at least L - stride tokens of context
            assert w.score_from - w.start >= L - stride + 1 - 1
    assert seen == list(range(1, n + 1))


def _hf_reference(hf, docs, L: int, stride: int) -> dict[str, tuple[float, int, int]]:
    """Per-source (NLL, tokens, bytes) computed with HF transformers, one window at a time."""
    out: dict[str, list] = {}
    for d in docs:
        seq = [BYTE_EOS, *d.text.encode()]
        nll = 0.0
        for w in windows(len(seq) - 1, L, stride):
            ids = torch.tensor([seq[w.start : w.end - 1]])
            with torch.no_grad():
                logp = torch.log_softmax(hf(ids).logits[0].double(), -1)
            for p in range(w.score_from, w.end):
                nll -= float(logp[p - 1 - w.start, seq[p]])
        acc = out.setdefault(d.source, [0.0, 0, 0])
        acc[0] += nll
        acc[1] += len(seq) - 1
        acc[2] += len(d.text.encode())
    return {k: tuple(v) for k, v in out.items()}


def test_per_source_loss_matches_hf_transformers_and_in_loop_matches_offline(make_config, eval_files, tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = make_config(
        tokenizer={"eos_token_id": BYTE_EOS, "path": eval_files["tokenizer"]},
        trainer={"max_steps": 4},
        evaluation={"documents": [eval_files["docs"]], "tasks": [{"name": "ns", "path": eval_files["task"]}],
                    "stride": 24},
    )
    trainer = build_trainer(cfg)
    trainer.fit()
    last = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]

    out = export_hf(trainer.checkpointer.folder, tmp_path / "hf", eval_files["tokenizer"])
    r = subprocess.run(
        [sys.executable, "-m", "training.cli", "eval", str(out), "--documents", eval_files["docs"], "--stride", "24",
         "--task", f"ns={eval_files['task']}", "--out", str(tmp_path / "res.json")],
        capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    offline = json.loads((tmp_path / "res.json").read_text())

    hf = transformers.OlmoForCausalLM.from_pretrained(out, torch_dtype=torch.float32).eval()
    docs = read_documents([eval_files["docs"]])
    ref = _hf_reference(hf, docs, 64, 24)
    assert set(ref) == {"short", "long"}
    for src, (nll, ntok, nbytes) in ref.items():
        ours = offline["perplexity"][f"source/{src}"]
        assert ours["tokens"] == ntok and ours["bytes"] == nbytes
        assert ours["loss"] == pytest.approx(nll / ntok, abs=1e-4)
        assert ours["bits_per_byte"] == pytest.approx(nll / (math.log(2) * nbytes), abs=1e-4)
        # the training loop's last evaluation, on the same weights, gives the same numbers
        assert last[f"eval/ppl/{src}/loss"] == pytest.approx(ours["loss"], abs=1e-5)
        assert last[f"eval/ppl/{src}/bits_per_byte"] == pytest.approx(ours["bits_per_byte"], abs=1e-5)
    assert last["eval/task/ns/acc"] == pytest.approx(offline["tasks"]["ns"]["acc"])
    micro = offline["perplexity"]["micro"]
    assert micro["tokens"] == sum(v[1] for v in ref.values())
    assert offline["perplexity"]["macro"]["loss"] == pytest.approx(
        np.mean([offline["perplexity"][f"source/{s}"]["loss"] for s in ref]))


def _suite(eval_files, tasks, **kw):
    return EvalSuite(EvaluationConfig(tasks=tasks, **kw), TokenizerConfig(eos_token_id=BYTE_EOS),
                     eval_files["tokenizer"], 64, 4)


def test_multiple_choice_metrics_follow_the_logliks(make_config, eval_files, tmp_path) -> None:
    trainer = build_trainer(make_config(trainer={"max_steps": 2}))
    trainer.fit()
    model = load_for_eval(trainer.checkpointer.folder, torch.device("cpu")).model
    enc = TextEncoder(eval_files["tokenizer"])
    task = MultipleChoiceTask(TaskConfig(path=eval_files["task"]), enc, BYTE_EOS, 64)
    res = task.run(model, batch_size=3, device=torch.device("cpu"), pad_id=1)
    again = task.run(model, batch_size=7, device=torch.device("cpu"), pad_id=1)
    flat = [x for p in res.predictions for x in p["loglik"]]
    assert flat == pytest.approx([x for p in again.predictions for x in p["loglik"]], abs=1e-9)
    qs = load_questions(eval_files["task"])
    hits = {"acc": 0, "acc_per_char": 0, "acc_per_token": 0}
    for p in res.predictions:
        q = qs[p["question"]]
        ll = np.array(p["loglik"])
        lens = np.array([len(" " + c) for c in q.choices])  # byte tokens: chars == tokens for ASCII
        assert p["acc"] == int(np.argmax(ll)) and p["acc_per_char"] == int(np.argmax(ll / lens))
        for k in hits:
            hits[k] += p[k] == q.gold
    assert res.metrics == {**{k: v / len(qs) for k, v in hits.items()}, "questions": len(qs)}
    # the first choice's log-likelihood is the model's log-probability of its bytes after the context
    q = qs[0]
    seq = [BYTE_EOS, *q.context.encode(), *(" " + q.choices[0]).encode()][-65:]  # context 64, cut on the left
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([seq[:-1]]))[0].double(), -1)
    n = len((" " + q.choices[0]).encode())
    expect = sum(float(logp[i - 1, seq[i]]) for i in range(len(seq) - n, len(seq)))
    assert res.predictions[0]["loglik"][0] == pytest.approx(expect, abs=1e-4)


def test_k_shot_prompts_are_seeded_and_independent_of_limit(eval_files) -> None:
    qs = load_questions(eval_files["task"])
    cfg = TaskConfig(path=eval_files["task"], num_shots=3, seed=7)
    a = [prompt(qs, i, cfg) for i in range(len(qs))]
    assert a == [prompt(qs, i, cfg) for i in range(len(qs))]
    assert a != [prompt(qs, i, TaskConfig(path=eval_files["task"], num_shots=3, seed=8)) for i in range(len(qs))]
    for i, p in enumerate(a):
        shots = shot_indices(len(qs), i, 3, 7)
        assert i not in shots and len(set(shots)) == 3
        assert p.endswith(qs[i].context) and p.count("\n\n") == 3
        assert p.startswith(qs[shots[0]].context + " " + qs[shots[0]].choices[qs[shots[0]].gold])
    enc = TextEncoder(eval_files["tokenizer"])
    limited = MultipleChoiceTask(TaskConfig(path=eval_files["task"], num_shots=3, seed=7, limit=4), enc, BYTE_EOS, 512)
    full = MultipleChoiceTask(cfg, enc, BYTE_EOS, 512)
    for a_req, b_req in zip(limited.requests, full.requests[: len(limited.requests)], strict=True):
        assert np.array_equal(a_req.tokens, b_req.tokens)


@pytest.mark.parametrize("line,problem", [
    ({"context": "Q", "choices": ["a", "b"]}, "no gold"),
    ({"context": "Q", "choices": ["a", "b"], "gold": 5}, "out of range"),
    ({"context": "Q", "choices": ["a"], "gold": 0}, "at least two"),
    ({"choices": ["a", "b"], "gold": 0}, "no context"),
])
def test_bad_task_lines_name_file_and_line(tmp_path, line, problem) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"query": "ok", "endings": ["x", "y"], "label": "B"}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(DataFormatError, match=rf"{re.escape(str(p))}:2: .*{problem}"):
        load_questions(str(p))


def test_task_field_variants(tmp_path) -> None:
    p = tmp_path / "t.jsonl"
    rows = [{"query": "a", "endings": ["x", "y"], "label": "B"}, {"ctx": "b", "options": ["x", "y"], "answer": "x"},
            {"question": "c", "choices": ["x", "y", "z"], "gold": "2"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [q.gold for q in load_questions(str(p))] == [1, 0, 2]


def test_empty_sources_are_errors(tmp_path, eval_files) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataFormatError, match="empty.jsonl: no documents"):
        read_documents([str(tmp_path / "empty.jsonl")])
    with pytest.raises(DataFormatError, match="no evaluation file matches"):
        read_documents([str(tmp_path / "missing-*.jsonl")])
    (tmp_path / "empty_task.jsonl").write_text("\n")
    with pytest.raises(DataFormatError, match="holds no questions"):
        load_questions(str(tmp_path / "empty_task.jsonl"))


def test_next_sentence_task_from_documents_is_seeded_and_real(eval_files) -> None:
    from training.eval.cloze import next_sentence_questions

    docs = [d for d in read_documents([eval_files["docs"]])]
    a = next_sentence_questions(docs, 10, seed=3)
    assert a == next_sentence_questions(docs, 10, seed=3) and a != next_sentence_questions(docs, 10, seed=4)
    for q in a:
        gold = q.choices[q.gold]
        doc_text = " ".join(next(d for d in docs if d.id == q.where.split("#")[0]).text.split())
        assert q.context + " " + gold in doc_text  # the real next sentence of that document
        assert len(set(q.choices)) == len(q.choices) >= 2


def test_max_documents_keeps_the_first_of_each_source(eval_files) -> None:
    from training.eval.suite import _first_per_source

    docs = read_documents([eval_files["docs"]])
    kept = _first_per_source(docs, 2)
    assert [d.id for d in kept] == [d.id for d in docs if d.id in {x.id for x in kept}]
    assert sorted(d.source for d in kept) == ["long", "long", "short", "short"]
    assert _first_per_source(docs, None) == docs
