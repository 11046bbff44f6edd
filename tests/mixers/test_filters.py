"""Every filter form on a truth table: jq and JSONPath, int vs float, missing keys, empty lists."""

from __future__ import annotations

import pytest

from dolma_pipeline.errors import ConfigError
from mixers.config import FilterConfig
from mixers.jq import compile_jq
from mixers.jsonpath import compile_jsonpath
from mixers.rules import DocFilter
from mixers.values import EvalError

K = "exp__gopher_v1__word_count"
DOCS = {
    "int": {"text": "hello world", "attributes": {K: [[0, 11, 80]]}},
    "float": {"text": "hello world", "attributes": {K: [[0, 11, 80.0]]}},
    "low": {"text": "hello world", "attributes": {K: [[0, 11, 10.0]]}},
    "empty": {"text": "hello world", "attributes": {K: []}},
    "missing": {"text": "hello world", "attributes": {"other": [[0, 1, 1.0]]}},
    "no_attributes": {"text": "hello world"},
}


def keeps(syntax: str, include=(), exclude=()) -> dict[str, bool]:
    f = DocFilter(FilterConfig(include=list(include), exclude=list(exclude), syntax=syntax))
    return {name: f.drop_reason(doc) is None for name, doc in DOCS.items()}


# (expression, syntax, kind, expected keep for int, float, low, empty, missing, no_attributes)
TABLE = [
    # The two spellings of 80 compare equal in both syntaxes (Dolma's JSONPath says 80 != 80.0).
    (f"$.attributes[?(@.{K}[0][2] == 80)]", "jsonpath", "exclude", (False, False, True, True, True, True)),
    (f"$.attributes[?(@.{K}[0][2] == 80.0)]", "jsonpath", "exclude", (False, False, True, True, True, True)),
    (f".attributes.{K}[0][2] == 80", "jq", "exclude", (False, False, True, True, True, True)),
    (f".attributes.{K}[0][2] == 80.0", "jq", "exclude", (False, False, True, True, True, True)),
    # Dolma's published JSONPath guard form: missing and empty attributes never match.
    (f"$.attributes[?(@.{K} && @.{K}[0] && @.{K}[0][2] < 50)]", "jsonpath", "exclude",
     (True, True, False, True, True, True)),
    (f"$.attributes[?(@.{K}[0][2] < 50)]", "jsonpath", "exclude", (True, True, False, True, True, True)),
    (f"$.attributes[?(@.{K}[0][2] >= 50)]", "jsonpath", "include", (True, True, False, False, False, False)),
    (f"$.attributes[?(!@.{K})]", "jsonpath", "exclude", (True, True, True, True, False, True)),
    # jq with a `//` default: an absent key takes the default; an empty list is truthy so it stays [].
    # ... and `[][0][2]` is null, which sorts below 50: an empty list is dropped by a "< 50" exclude.
    (f"(.attributes.{K} // [[0,0,1e9]])[0][2] < 50", "jq", "exclude", (True, True, False, False, True, True)),
    (f"(.attributes.{K} // [[0,0,0]])[0][2] < 50", "jq", "exclude", (True, True, False, False, False, False)),
    # Without a default jq's order puts null below every number: missing/empty count as "< 50".
    (f".attributes.{K}[0][2] < 50", "jq", "exclude", (True, True, False, False, False, False)),
    (f".attributes.{K} != null and .attributes.{K}[0][2] < 50", "jq", "exclude",
     (True, True, False, False, True, True)),
    (f"(.attributes.{K} | length) == 0", "jq", "exclude", (True, True, True, False, False, False)),
    (f".attributes.{K} | length", "jq", "include", (True, True, True, False, False, False)),
    (f"(.attributes.{K} // []) | map(.[2]) | add >= 50", "jq", "include", (True, True, False, False, False, False)),
    (f".attributes.{K}[0][-1] > 50 or (.text | length) > 100", "jq", "include", (True, True, False, False, False, False)),
    (f"(.attributes.{K}[0][2] < 50) | not", "jq", "include", (True, True, False, False, False, False)),
    (f".attributes.{K} | select(length > 0) | .[0][2] >= 50", "jq", "include", (True, True, False, False, False, False)),
]


@pytest.mark.parametrize("expression,syntax,kind,expected", TABLE, ids=[t[0][:60] for t in TABLE])
def test_truth_table(expression, syntax, kind, expected):
    result = keeps(syntax, **{kind: [expression]})
    assert tuple(result[name] for name in DOCS) == expected


def test_include_any_exclude_any():
    kept = keeps("jq", include=[f".attributes.{K}[0][2] > 70", ".text == \"nothing\""],
                 exclude=[".attributes.other != null"])
    assert kept == {"int": True, "float": True, "low": False, "empty": False, "missing": False, "no_attributes": False}


def test_dolma_truthiness_of_jq_results():
    # Dolma counts 0, "", [] and {} as "no match"; an include with several outputs needs all of them.
    f = DocFilter(FilterConfig(include=[".attributes.x[][2]"], syntax="jq"))
    assert f.drop_reason({"attributes": {"x": [[0, 1, 1], [1, 2, 0.5]]}}) is None
    assert f.drop_reason({"attributes": {"x": [[0, 1, 1], [1, 2, 0]]}}) is not None
    assert f.drop_reason({"attributes": {"x": []}}) is not None
    g = DocFilter(FilterConfig(exclude=[".attributes.x[][2]"], syntax="jq"))
    assert g.drop_reason({"attributes": {"x": [[0, 1, 0], [1, 2, 0.5]]}}) is not None
    assert g.drop_reason({"attributes": {"x": [[0, 1, 0]]}}) is None


@pytest.mark.parametrize("expression,expected", [
    ("1 == 1.0", [True]), ("true == 1", [False]), ("null < false", [True]), ("false < 0", [True]),
    ("0 < \"a\"", [True]), ("[1,2] < [1,3]", [True]), ("[1] == [1.0]", [True]),
    ("(1, 2) + 10", [11, 12]), ("[.[] | . * 2]", [[2, 4, 6]]), (".[1:]", [[2, 3]]), (".[-1]", [3]),
    ("add / length", [2.0]), ("map(select(. >= 2)) | length", [2]), ("max_by(-.)", [1]), ("min_by(-.)", [3]),
    ("if length > 2 then \"long\" elif length > 0 then \"short\" else \"empty\" end", ["long"]),
    ("[.[] | tostring] | join(\"-\")", ["1-2-3"]), (".[5] // \"dflt\"", ["dflt"]), ("first, last", [1, 3]),
    ("any(. > 2)", [True]), ("all(. > 2)", [False]), (".[0] | not", [False]), ("null | not", [True]),
    ("sort_by(-.) | .[0]", [3]), ("unique | length", [3]), ("keys", [[0, 1, 2]]), ("has(2)", [True]),
])
def test_jq_semantics(expression, expected):
    assert compile_jq(expression).outputs([1, 2, 3]) == expected


def test_jq_objects_and_entries():
    doc = {"attributes": {"lang__en": [[0, 9, 0.2]], "lang__fr": [[0, 9, 0.7]], "other": [[0, 9, 0.9]]}}
    expr = '.attributes | to_entries | map(select(.key | startswith("lang__"))) | max_by(.value) | .key'
    assert compile_jq(expr).outputs(doc) == ["lang__fr"]
    assert compile_jq('.attributes | keys | length').outputs(doc) == [3]
    assert compile_jq('.attributes.missing.deeper[0][2]').outputs(doc) == [None]
    assert compile_jq('.attributes?.missing?.x?').outputs(doc) == [None]


def test_jq_type_errors_raise_and_try_suppresses():
    with pytest.raises(EvalError):
        compile_jq(".text[0]").outputs({"text": "abc"})
    with pytest.raises(EvalError):
        compile_jq(".text + 1").outputs({"text": "abc"})
    assert compile_jq(".text[0]?").outputs({"text": "abc"}) == []
    assert compile_jq("(.text[0]) // 7").outputs({"text": "abc"}) == [7]


@pytest.mark.parametrize("bad", [".x |", "map(", ".x[0", "frobnicate(.x)", ".x == ", "import \"a\" as a; ."])
def test_jq_syntax_errors_are_config_errors(bad):
    with pytest.raises(ConfigError, match="jq"):
        compile_jq(bad)


@pytest.mark.parametrize("bad", ["attributes.x", "$.attributes[?(@.x >= )]", "$.a[", "$.a[?(@.x == 1]"])
def test_jsonpath_syntax_errors_are_config_errors(bad):
    with pytest.raises(ConfigError, match="JSONPath"):
        compile_jsonpath(bad)


def test_jsonpath_selection_forms():
    doc = {"a": {"b": [[0, 1, 0.2], [1, 5, 0.9]], "c": "x"}, "foo": 3, "deep": {"foo": 4}}
    assert compile_jsonpath("$.a.b").select(doc) == [doc["a"]["b"]]
    assert compile_jsonpath("$['a']['c']").select(doc) == ["x"]
    assert compile_jsonpath("$.a.b[-1][2]").select(doc) == [0.9]
    assert compile_jsonpath("$.a.b[0:1]").select(doc) == [[0, 1, 0.2]]
    assert compile_jsonpath("$.a.b[*][2]").select(doc) == [0.2, 0.9]
    assert compile_jsonpath("$..foo").select(doc) == [3, 4]
    assert compile_jsonpath("$.a.b[?(@[2] > 0.5)]").select(doc) == [[1, 5, 0.9]]
    assert compile_jsonpath("$.a[?(@.c == 'x' || @.zz)]").select(doc) == [doc["a"]]
    assert compile_jsonpath("$.a[?(@.c == \"y\")]").select(doc) == []
    assert compile_jsonpath("$@.a[?(@.b[0][2] >= 0.2 && !(@.c == 'y'))]").select(doc) == [doc["a"]]
    assert compile_jsonpath("$.a[?(@.c > 1)]").select(doc) == []  # ordering needs two numbers or two strings


def test_attribute_keys_are_extracted_for_validation():
    assert compile_jq(f"(.attributes.{K} // [[0,0,0]])[0][2] > 5 and .attributes[\"b\"] != null").attribute_keys \
        == {K, "b"}
    assert compile_jsonpath(f"$.attributes[?(@.{K} && @.{K}[0][2] < 5 && @.b)]").attribute_keys == {K, "b"}
    assert compile_jsonpath("$.attributes.pii__x__EMAIL_ADDRESS").attribute_keys == {"pii__x__EMAIL_ADDRESS"}


@pytest.mark.parametrize("expression", [
    "(.a // [[0,0,1e9]])[0][2] < 50", ".a[0][-1] >= 0.5 and .b == null", "(.a | length) > 0 or .t == \"x\"",
    ".a | map(.[2] * (.[1] - .[0])) | add", "if .a then .a[0][2] else -1 end", ".t | startswith(\"h\")",
    "[.a[][2]] | max", ".a[0][5]", ".a[1:] | length", ".a[0] | not",
])
@pytest.mark.parametrize("doc", [{"a": [[0, 4, 0.75], [4, 9, 1]], "t": "hi"}, {"a": [], "t": "x"}, {"t": "x"},
                                 {"a": None, "b": 1}])
def test_scalar_fast_path_agrees_with_the_generator_form(expression, doc):
    from mixers.jq import _Parser
    from mixers.jq_compile import compile_node, compile_scalar

    tree = _Parser(expression).parse()
    scalar = compile_scalar(tree)
    assert scalar is not None

    def run(f):
        try:
            return ("ok", f(doc))
        except EvalError as e:
            return ("error", type(e))
    assert run(lambda d: [scalar(d)]) == run(compile_node(tree))
