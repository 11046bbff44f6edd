"""Typed rules, dedupe flags, sampling and span replacement."""

from __future__ import annotations

import pytest

from dolma_pipeline.config import from_dict
from dolma_pipeline.errors import ConfigError
from mixers.config import RuleConfig, SpanReplacementConfig
from mixers.rules import DedupeFlag, MalformedAttribute, Rule, reduce_spans, sample_copies
from mixers.spans import SpanReplacement, apply_replacements

K = "exp__gopher_v1__word_count"


def rule(**kw) -> Rule:
    return Rule(from_dict(RuleConfig, {"attribute": K, **kw}))


@pytest.mark.parametrize("spans,how,expected", [
    ([[0, 10, 3], [10, 20, 5.0]], "first", 3), ([[0, 10, 3], [10, 20, 5.0]], "last", 5.0),
    ([[0, 10, 3], [10, 20, 5.0]], "max", 5.0), ([[0, 10, 3], [10, 20, 5.0]], "min", 3),
    ([[0, 10, 3], [10, 20, 5.0]], "sum", 8.0), ([[0, 10, 3], [10, 20, 5.0]], "count", 2.0),
    ([[0, 10, 1.0], [10, 15, 0.5]], "frac", 12.5 / 40), ([], "count", 0.0), (None, "sum", 0.0),
    ([], "frac", 0.0), ([], "first", None), (None, "max", None),
])
def test_reduce(spans, how, expected):
    assert reduce_spans(spans, how, K, 40) == expected


@pytest.mark.parametrize("kw,attrs,drops", [
    ({"op": "lt", "value": 50}, {K: [[0, 1, 10]]}, True),
    ({"op": "lt", "value": 50}, {K: [[0, 1, 50.0]]}, False),
    ({"op": "le", "value": 50}, {K: [[0, 1, 50]]}, True),
    ({"op": "eq", "value": 1}, {K: [[0, 1, 1.0]]}, True),  # int value vs float score
    ({"op": "eq", "value": 1.0}, {K: [[0, 1, 1]]}, True),
    ({"op": "ne", "value": 1}, {K: [[0, 1, 1.0]]}, False),
    ({"op": "lt", "value": 50}, {}, False),  # missing: the condition does not hold
    ({"op": "lt", "value": 50}, {K: []}, False),
    ({"op": "lt", "value": 50, "default": 0}, {}, True),  # unless a default is given
    ({"op": "ge", "value": 50, "action": "include"}, {K: [[0, 1, 80]]}, False),
    ({"op": "ge", "value": 50, "action": "include"}, {}, True),  # include: missing cannot pass
    ({"op": "gt", "value": 5, "reduce": "count"}, {K: [[0, 1, 1]] * 6}, True),
    ({"op": "gt", "value": 5, "reduce": "count"}, {}, False),
    ({"op": "gt", "value": 0.3, "reduce": "frac"}, {K: [[0, 20, 1.0]]}, True),
])
def test_rule_truth_table(kw, attrs, drops):
    assert rule(**kw).drops(attrs, 40) is drops


def test_rule_config_rejects_bad_op_and_malformed_spans():
    with pytest.raises(ConfigError, match="op"):
        from_dict(RuleConfig, {"attribute": K, "op": "less", "value": 1})
    with pytest.raises(MalformedAttribute):
        rule(op="lt", value=1).drops({K: [[0, 1]]}, 10)
    with pytest.raises(MalformedAttribute):
        rule(op="lt", value=1).drops({K: "oops"}, 10)


def test_dedupe_flag_keeps_the_representative():
    flag = DedupeFlag("dedupe__minhash_v1__duplicate")
    assert flag.drops({"dedupe__minhash_v1__duplicate": [[0, 9, 1.0]]}, 9)
    assert not flag.drops({"dedupe__minhash_v1__duplicate": [[0, 9, 0.0]]}, 9)
    assert not flag.drops({}, 9)


def test_sampling_is_deterministic_and_close_to_the_rate():
    ids = [f"doc-{i}" for i in range(4000)]
    first = [sample_copies(i, 7, 0.3) for i in ids]
    assert first == [sample_copies(i, 7, 0.3) for i in ids]  # same seed, same decision, any order
    assert first[::-1] == [sample_copies(i, 7, 0.3) for i in reversed(ids)]
    assert 0.27 < sum(first) / len(ids) < 0.33
    other = [sample_copies(i, 8, 0.3) for i in ids]
    assert other != first
    up = [sample_copies(i, 7, 2.5) for i in ids]
    assert set(up) == {2, 3}
    assert 2.45 < sum(up) / len(ids) < 2.55
    assert all(sample_copies(i, 7, 1.0) == 1 for i in ids[:10])
    assert all(sample_copies(i, 7, 0.0) == 0 for i in ids[:10])


def replacer(key: str, order: int, replacement: str, min_score=None, max_score=None) -> SpanReplacement:
    config = SpanReplacementConfig(span=f"$.attributes.{key}", min_score=min_score, max_score=max_score,
                                   replacement=replacement)
    return SpanReplacement(config, order)


def replace(text: str, attributes: dict, replacers: list[SpanReplacement]) -> tuple[str, dict]:
    doc = {"text": text, "attributes": attributes}
    return apply_replacements(text, [c for r in replacers for c in r.candidates(doc)])


def test_pii_masking_and_score_bounds():
    text = "mail bob@example.com or call 555-123-4567 from 10.0.0.1"
    attrs = {"p__pii__EMAIL_ADDRESS": [[5, 20, 1.0]], "p__pii__PHONE_NUMBER": [[29, 41, 1.0]],
             "p__pii__IP_ADDRESS": [[47, 55, 0.4]]}
    reps = [replacer("p__pii__EMAIL_ADDRESS", 0, " |||EMAIL_ADDRESS||| ", min_score=0.5),
            replacer("p__pii__PHONE_NUMBER", 1, " |||PHONE_NUMBER||| ", min_score=0.5),
            replacer("p__pii__IP_ADDRESS", 2, " |||IP_ADDRESS||| ", min_score=0.5)]
    out, counts = replace(text, attrs, reps)
    assert out == "mail  |||EMAIL_ADDRESS|||  or call  |||PHONE_NUMBER|||  from 10.0.0.1"
    assert counts == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    # min_score <= score < max_score: the upper bound is exclusive.
    assert replace("abcdef", {"k": [[0, 2, 0.5], [2, 4, 0.4], [4, 6, 0.45]]},
                   [replacer("k", 0, "#", min_score=0.4, max_score=0.5)])[0] == "ab##"


def test_overlapping_spans_earliest_wins():
    text = "abcdefghij"
    attrs = {"a": [[1, 5, 1.0], [3, 8, 1.0]], "b": [[1, 3, 1.0], [8, 9, 1.0]]}
    out, counts = replace(text, attrs, [replacer("a", 0, "<A>", min_score=0), replacer("b", 1, "<B>", min_score=0)])
    # [1,5) wins over [3,8) (earliest) and over [1,3) (same start: config order); [8,9) is free.
    assert out == "a<A>fgh<B>j"
    assert counts == {"a": 1, "b": 1}


def test_placeholder_delete_and_unicode_offsets():
    text = "naïve ☃ café 𝔘nicode"  # code points, not bytes: 𝔘 is one index (4 UTF-8 bytes)
    attrs = {"k": [[6, 7, 1.0], [13, 20, 1.0]], "d": [[0, 6, 1.0]]}
    out, _ = replace(text, attrs, [replacer("k", 0, "[{}]", min_score=0.5), replacer("d", 1, "", min_score=0.5)])
    assert out == "[☃] café [𝔘nicode]"


def test_spans_beyond_the_text_are_clipped_and_empty_spans_ignored():
    out, counts = replace("hello", {"k": [[3, 99, 1.0], [1, 1, 1.0], [7, 9, 1.0]]}, [replacer("k", 0, "X", min_score=0)])
    assert out == "helX"
    assert counts == {"k": 1}


def test_paragraph_removal_by_duplicate_spans():
    text = "para one\npara two\npara three\n"
    attrs = {"bff_duplicate_paragraph_spans": [[9, 18, 1.0]]}
    out, _ = replace(text, attrs, [replacer("bff_duplicate_paragraph_spans", 0, "", min_score=0.5)])
    assert out == "para one\npara three\n"
