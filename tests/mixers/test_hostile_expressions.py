"""Filters stay bounded and well-behaved on hostile documents.

Deep nesting never reaches Python's recursion limit (`..`, `$..`, comparisons walk with a stack); `test`
takes only literal patterns and bounds each match; whatever a builtin raises on a document's values is an
`EvalError` naming the expression, and the mix names file and line.
"""

from __future__ import annotations

import random
import time

import pytest

from dolma_pipeline.cli import main
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.io import write_jsonl
from mixers.config import FilterConfig
from mixers.jq import compile_jq
from mixers.jsonpath import compile_jsonpath
from mixers.rules import DocFilter
from mixers.values import EvalError, compare

DEPTH = 5000  # five times Python's default recursion limit


def _deep(depth: int = DEPTH) -> dict:
    inner: list = ["leaf"]
    for _ in range(depth):
        inner = [{"k": inner}]
    return {"id": "d", "text": "t", "m": inner}


@pytest.mark.parametrize("expression, expected", [
    ("[..] | length", [3 + 2 * DEPTH + 1 + 1]),  # doc, id, text, m, each level's list and dict, ["leaf"], leaf
    ("[.. | select(type == \"string\")] | length", [3]),
    (".m == .m", [True]),
    (".m < .m + [1]", [True]),  # equal up to the leaf, then shorter
    ("[.m, .m] | sort | length", [2]),
    ("[.m, .m] | unique | length", [1]),
])
def test_jq_on_a_deep_document(expression, expected):
    assert compile_jq(expression).outputs(_deep()) == expected


def test_jsonpath_on_a_deep_document():
    doc = _deep()
    assert len(compile_jsonpath("$..k").select(doc)) == DEPTH
    assert compile_jsonpath("$..*").select(doc)[-1] == "leaf"
    assert compile_jsonpath("$.m[?(@.k == @.k)]").select(doc) == doc["m"]


def _reference_compare(a, b) -> int:
    """jq's order, recursively (the definition the iterative `compare` must agree with)."""
    rank = compare_rank
    if rank(a) != rank(b):
        return (rank(a) > rank(b)) - (rank(a) < rank(b))
    if isinstance(a, list):
        for x, y in zip(a, b):
            if c := _reference_compare(x, y):
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if isinstance(a, dict):
        ka, kb = sorted(a), sorted(b)
        if ka != kb:
            return (ka > kb) - (ka < kb)
        for key in ka:
            if c := _reference_compare(a[key], b[key]):
                return c
        return 0
    return (a > b) - (a < b) if rank(a) in (3, 4) else 0


def compare_rank(v) -> int:
    if v is None:
        return 0
    if v is False or v is True:
        return 1 + (v is True)
    return {int: 3, float: 3, str: 4, list: 5, dict: 6}[type(v)]


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind in (1, 2):
        return rng.choice([0, 1, 1.0, -2, 2.5])
    if kind in (3, 4):
        return rng.choice(["", "a", "b", "ab"])
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice("abc"): _random_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def test_iterative_compare_is_jq_order():
    rng = random.Random(1)
    for _ in range(20000):
        a, b = _random_value(rng), _random_value(rng)
        assert compare(a, b) == _reference_compare(a, b), (a, b)


def test_test_takes_only_literal_patterns():
    with pytest.raises(ConfigError, match="string literal"):
        compile_jq(".text | test(.pattern)")
    with pytest.raises(ConfigError, match="invalid regular expression"):
        compile_jq('.text | test("(")')  # found when the config is read, not on the first document
    assert compile_jq('.text | test("^a+b")').outputs({"text": "aab"}) == [True]
    assert compile_jq('[.[] | test("x")]').outputs(["x", "y"]) == [[True, False]]


def test_test_is_bounded_on_a_hostile_text():
    expression = DocFilter(FilterConfig(exclude=['.text | test("(a|aa)+$")'], syntax="jq"))
    started = time.process_time()
    with pytest.raises(EvalError, match=r"filter.exclude jq expression .*test\('\(a\|aa\)\+\$'\) ran longer than 1 s"):
        expression.drop_reason({"text": "a" * 60 + "b"})  # ~10^12 steps for a backtracking engine
    assert time.process_time() - started < 10


@pytest.mark.parametrize("expression, problem", [
    (".x | floor", "OverflowError"),
    (".x | sqrt", "ValueError"),
    (".a | to_entries", "AttributeError"),
    ("[.a[]] | from_entries", "AttributeError"),
    (".n | reverse", "TypeError"),
    (".a[.x]", "OverflowError"),
    ("1 % .x", "OverflowError"),
])
def test_every_builtin_error_is_an_eval_error(expression, problem):
    doc = {"x": float("inf"), "a": [1], "n": 3}
    doc["x"] = float("-inf") if "sqrt" in expression else doc["x"]
    with pytest.raises(EvalError, match=problem):
        compile_jq(expression).outputs(doc)
    assert compile_jq(f"[({expression})?]").outputs(doc) == [[]]  # `?` suppresses it, as in jq
    assert compile_jq(f"({expression}) // 7").outputs(doc) == [7]


def _mix(tmp_path, capsys, docs_lines: bytes, exclude: str) -> tuple[int, str]:
    import yaml

    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "x.jsonl").write_bytes(docs_lines)
    config = {"streams": [{"name": "s", "documents": [f"{tmp_path}/documents/*.jsonl"],
                           "filter": {"syntax": "jq", "exclude": [exclude]},
                           "output": {"path": f"{tmp_path}/mixed"}}], "debug": True}
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(config))
    code = main(["-c", str(tmp_path / "mix.yaml"), "mix"])
    return code, "".join(capsys.readouterr())


def test_mix_names_file_line_and_expression(tmp_path, capsys):
    lines = b'{"id": "a", "text": "t", "v": 1}\n{"id": "b", "text": "t", "v": 1e999}\n'
    code, output = _mix(tmp_path, capsys, lines, ".v | floor > 3")
    assert code == 1
    assert "x.jsonl:2: document 'b': filter.exclude jq expression '.v | floor > 3': OverflowError" in output


def test_mix_refuses_a_deep_document_by_file_and_line(tmp_path, capsys):
    deep = b'{"id": "b", "text": "t", "m": ' + b"[" * 300 + b"]" * 300 + b"}\n"
    code, output = _mix(tmp_path, capsys, b'{"id": "a", "text": "t"}\n' + deep, ".m == 1")
    assert code == 1
    assert "x.jsonl:2: JSON nested deeper than 254 levels" in output


def test_deep_attribute_row_is_refused(tmp_path, capsys):
    write_jsonl(str(tmp_path / "documents" / "x.jsonl.gz"), [{"id": "a", "text": "t"}])
    row = b'{"id": "a", "attributes": {"k": ' + b"[" * 300 + b"]" * 300 + b"}}\n"
    (tmp_path / "attributes" / "e").mkdir(parents=True)
    (tmp_path / "attributes" / "e" / "x.jsonl.gz").write_bytes(__import__("gzip").compress(row))
    import yaml

    config = {"streams": [{"name": "s", "documents": [f"{tmp_path}/documents/*.jsonl.gz"], "attributes": ["e"],
                           "output": {"path": f"{tmp_path}/mixed"}}], "debug": True}
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(config))
    assert main(["-c", str(tmp_path / "mix.yaml"), "mix"]) == 1
    assert "attributes/e/x.jsonl.gz:1: JSON nested deeper than 254 levels" in "".join(capsys.readouterr())


def test_max_line_bytes_bounds_attribute_rows_too(tmp_path, capsys):
    import yaml

    write_jsonl(str(tmp_path / "documents" / "x.jsonl.gz"), [{"id": "a", "text": "t"}, {"id": "b", "text": "u"}])
    write_jsonl(str(tmp_path / "attributes" / "e" / "x.jsonl.gz"),
                [{"id": "a", "attributes": {"e__t__k": [[0, 1, 1.0]]}},
                 {"id": "b", "attributes": {"e__t__k": [[0, 1, 1.0]] * 500}}])  # ~6.5 KB
    config = {"streams": [{"name": "s", "documents": [f"{tmp_path}/documents/*.jsonl.gz"], "attributes": ["e"],
                           "rules": [{"attribute": "e__t__k", "op": "gt", "value": 5, "reduce": "count"}],
                           "output": {"path": f"{tmp_path}/mixed"}}], "debug": True}
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(config))
    assert main(["-c", str(tmp_path / "mix.yaml"), "mix", "--max_line_bytes", "1000"]) == 1
    assert "attributes/e/x.jsonl.gz:2: line longer than max_line_bytes=1000" in "".join(capsys.readouterr())
    assert main(["-c", str(tmp_path / "mix.yaml"), "mix", "--max_line_bytes", "100000"]) == 0


def test_a_deeply_nested_expression_is_a_config_error():
    with pytest.raises(ConfigError, match="nested too deeply"):
        compile_jq("[" * 5000 + "1" + "]" * 5000)
