"""detect-secrets' line scan (`detect_secrets.core.scan._process_line_based_plugins`) with its plugins and
filters resolved once, for the `code_secrets_v1` tagger.

detect-secrets calls every plugin and filter through `call_function_with_arguments`, which works out for
each call which of the offered arguments the function takes (27 plugins and a dozen filters per line: most
of the scan's time). `LineScan` works that out once, when it is built from the active settings, and then
makes the calls the library's scan makes, with the same arguments, and yields the same secrets in the
same order:

- per line (right-stripped), with its code snippet (5 lines either side of the unstripped lines): the
  filters that take `line`; any true skips the line;
- then each plugin's `analyze_line(filename, line, line_number, context)`; each secret it returns is kept
  unless a filter that takes `secret`, then one that takes `context`, is true for it.

Shortcuts, none of which changes a finding:
- a plugin is not called on a line where it is known to find nothing: a `RegexBasedDetector` or a
  high-entropy plugin (26 of the 27) when none of its regexes matches the line (it only yields some of
  their `findall`s); `KeywordDetector` when the line lacks its keywords (each of its patterns needs them).
  Most lines of code match none of the regexes, and one search for the keywords replaces the keyword
  plugin's three.
- those regexes are not run on a document or a line that lacks the literal characters every match of the
  regex contains (`AKC`, `BEGIN RSA PRIVATE KEY`, `://`, ...), nor the keywords' on an ASCII line without
  `key`, `pass`, `pwd` or `secret` (in any case).
- the line filters run only for a line where some plugin finds something (the library runs them first,
  for every line). They are pure functions of the line and its snippet, so the findings are the same, and
  `is_indirect_reference`'s regex is quadratic in the line's length.

As in the library, a filter is offered only the arguments of its stage, and one that raises `TypeError`
counts as false. A filter that cannot take the stage's arguments (it needs one the stage does not offer)
only ever raises `TypeError` there, before its body runs, so it is left out of the stage.
`tests/taggers/test_code_secrets_scan.py` checks the findings against the library's own scan.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

try:  # Python >= 3.11
    from re import _constants as sre_constants
    from re import _parser as sre_parse
except ImportError:  # Python 3.10
    import sre_constants
    import sre_parse

# The arguments detect-secrets' scan offers at each filter stage (`_is_filtered_out` calls in `scan.py`).
LINE_STAGE = ("filename", "line", "context")
SECRET_STAGE = ("filename", "secret", "plugin", "line")
CONTEXT_STAGE = ("filename", "secret", "plugin", "line", "context")
PLUGIN_ARGUMENTS = ("filename", "line", "line_number", "context")


class StageFilter:
    """One filter function and the names, among its stage's arguments, that it is called with."""

    def __init__(self, function: Callable[..., Any], names: tuple[str, ...]):
        self.function = function
        self.names = names

    def __call__(self, arguments: dict[str, Any]) -> bool:
        try:
            return bool(self.function(**{name: arguments[name] for name in self.names}))
        except TypeError:  # detect-secrets: "Skipping non-compatible filters"
            return False


def stage_filters(filters: list[Any], required: str, offered: tuple[str, ...]) -> list[StageFilter]:
    """The filters that `get_filters_with_parameter(required)` gives, each with the offered names it takes;
    those whose signature cannot be bound to them are left out (their call is always a `TypeError`)."""
    stage = []
    for function in filters:
        if required not in function.injectable_variables:
            continue
        names = tuple(name for name in offered if name in function.injectable_variables)
        try:
            inspect.signature(function).bind(**dict.fromkeys(names))
        except TypeError:
            continue
        stage.append(StageFilter(function, names))
    return stage


def takes_arguments(function: Callable[..., Any], offered: tuple[str, ...]) -> tuple[str, ...]:
    """The offered names among `function`'s named parameters (detect-secrets' `get_injectable_variables`)."""
    code = function.__code__
    parameters = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    return tuple(name for name in offered if name in parameters)


def regex_screen(plugin: Any) -> tuple[Any, ...] | None:
    """The regexes a plugin's findings come from, for the plugins whose findings are (some of) their regexes'
    `findall`s: a `RegexBasedDetector` (its `denylist`; `JwtTokenDetector` keeps the well-formed ones) and,
    without eager search (the scan's case), a high-entropy plugin (its quoted-string `regex`). None for
    other plugins."""
    from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
    from detect_secrets.plugins.jwt import JwtTokenDetector

    kind = type(plugin)
    if kind.analyze_line is BasePlugin.analyze_line and kind.analyze_string in (
            RegexBasedDetector.analyze_string, JwtTokenDetector.analyze_string):
        return tuple(plugin.denylist)
    if (kind.analyze_line is HighEntropyStringsPlugin.analyze_line
            and kind.analyze_string is HighEntropyStringsPlugin.analyze_string):
        return (plugin.regex,)
    return None


class KeywordSearch:
    """`search` of detect-secrets' keyword regex (`DENYLIST_REGEX`, any case), answered without the regex for
    an ASCII line that holds none of `anchors`: words one of which each keyword spelling contains (lower
    case). On ASCII text a case-insensitive match of a keyword is one of its spellings in the lower-cased
    text (the other characters that match a letter of it under `re.IGNORECASE`, like "\u017f" for "s", are
    not ASCII), so such a line has no match. Other lines go to the regex."""

    def __init__(self, regex: Any, anchors: tuple[str, ...]):
        self.regex = regex
        self.anchors = anchors

    def search(self, line: str) -> Any:
        if line.isascii():
            lower = line.lower()
            if not any(anchor in lower for anchor in self.anchors):
                return None
        return self.regex.search(line)


def matches_ascii(character: str) -> bool:
    """Whether a non-ASCII pattern character matches some ASCII character under `re.IGNORECASE`."""
    pattern = re.compile(re.escape(character), re.IGNORECASE)
    return any(pattern.fullmatch(chr(code)) for code in range(128))


def keyword_anchors(keywords: tuple[str, ...]) -> tuple[str, ...]:
    """The last run of required letters of each keyword pattern (`api_?key` -> `key`), lower-cased, less
    those containing another (a line with `password` has `pass`); () unless every keyword is letters and
    optional single letters, none of them a non-ASCII letter that matches an ASCII one in any case."""
    runs = set()
    for keyword in keywords:
        items = sre_parse.parse(keyword).data
        run, last = "", ""
        for op, av in items:
            if op is sre_constants.LITERAL:
                if av >= 128 and matches_ascii(chr(av)):
                    return ()
                run += chr(av)
                continue
            optional_letter = (op is sre_constants.MAX_REPEAT and av[:2] == (0, 1) and len(av[2].data) == 1
                               and av[2].data[0][0] is sre_constants.LITERAL)
            if not optional_letter:
                return ()
            last, run = run or last, ""
        last = run or last
        if not last:
            return ()
        runs.add(last.lower())
    return tuple(sorted(run for run in runs if not any(other != run and other in run for other in runs)))


def keyword_screen(plugin: Any, filename: str) -> tuple[Any, ...] | None:
    """For detect-secrets' `KeywordDetector`: a search for its keywords (`DENYLIST_REGEX`, any case), if every
    pattern it tries on this file type has them as a group of its top-level sequence (so no pattern matches
    a line without them); None otherwise. Its three patterns for `.yml` each search the keywords: one
    screen for the three."""
    from detect_secrets.plugins import keyword
    from detect_secrets.util.filetype import determine_file_type

    if type(plugin) is not keyword.KeywordDetector:
        return None
    try:
        patterns = keyword.REGEX_BY_FILETYPE.get(determine_file_type(filename),
                                                 keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
        words = re.compile(keyword.DENYLIST_REGEX, re.IGNORECASE)
        anchors = keyword_anchors(tuple(keyword.DENYLIST))
    except AttributeError:  # another detect-secrets layout: no screen
        return None
    (_, (_, _, _, words_body)), *_ = sre_parse.parse(words.pattern, words.flags).data
    for pattern in patterns:
        top_level = sre_parse.parse(pattern.pattern, pattern.flags).data
        if not any(op is sre_constants.SUBPATTERN and av[1:3] == (0, 0) and repr(av[3]) == repr(words_body)
                   for op, av in top_level):
            return None
    return (KeywordSearch(words, anchors) if anchors else words,)


def required_literal(pattern: Any) -> str:
    """The longest run of literal characters that every match of `pattern` contains ("" if none): one of
    the top-level sequence or of a top-level group's. In a case-insensitive pattern only ASCII characters
    without case count (a letter also matches its other case)."""
    ignore_case = bool(pattern.flags & re.IGNORECASE)
    runs = [""]

    def collect(items: Any) -> None:
        runs.append("")
        for op, av in items:
            if op is sre_constants.LITERAL and not (ignore_case and (av >= 128 or chr(av).isalpha())):
                runs[-1] += chr(av)
                continue
            runs.append("")
            if op is sre_constants.SUBPATTERN and av[1:3] == (0, 0):
                collect(av[3].data)
                runs.append("")

    collect(sre_parse.parse(pattern.pattern, pattern.flags).data)
    return max(runs, key=len)


class ScanPlugin:
    """A plugin, the arguments its `analyze_line` takes, and, where known, patterns such that on a line none
    of them matches it finds nothing (the call is then skipped: the library's returns an empty set)."""

    def __init__(self, plugin: Any, filename: str):
        self.plugin = plugin
        self.analyze_line = plugin.analyze_line
        self.names = takes_arguments(plugin.analyze_line, PLUGIN_ARGUMENTS)
        self.screen = regex_screen(plugin) or keyword_screen(plugin, filename)

    def find(self, offered: dict[str, Any]) -> Any:
        return self.analyze_line(**{name: offered[name] for name in self.names})


class LineScan:
    """The plugins and filters of the active detect-secrets settings, called as the library's line scan
    calls them. Build it inside the settings (e.g. `default_settings()`) and use it while they hold."""

    def __init__(self, filename: str) -> None:
        from detect_secrets.settings import get_filters, get_plugins

        filters = get_filters()
        self.filename = filename
        self.plugins = [ScanPlugin(plugin, filename) for plugin in get_plugins()]
        # Every screening regex: its plugin's position, the literal all its matches contain ("" if none),
        # its search; the plugins without a screen.
        self.screens = [(position, required_literal(regex) if isinstance(regex, re.Pattern) else "", regex.search)
                        for position, plugin in enumerate(self.plugins) if plugin.screen is not None
                        for regex in plugin.screen]
        self.unscreened = {position for position, plugin in enumerate(self.plugins) if plugin.screen is None}
        self.line_filters = stage_filters(filters, "line", LINE_STAGE)
        self.secret_filters = stage_filters(filters, "secret", SECRET_STAGE)
        self.context_filters = stage_filters(filters, "context", CONTEXT_STAGE)

    def scan(self, lines: list[str]) -> Iterator[Any]:
        """The `PotentialSecret`s of `_process_line_based_plugins(list(enumerate(lines, start=1)), filename)`,
        in its order."""
        from detect_secrets.util.code_snippet import get_code_snippet

        filename = self.filename
        whole = "\n".join(lines)
        screens = [screen for screen in self.screens if screen[1] in whole]  # a regex whose literal is absent
        for line_number, raw_line in enumerate(lines, start=1):
            line = raw_line.rstrip()
            candidates = self.unscreened.union(position for position, literal, search in screens
                                               if literal in line and search(line))
            if not candidates:
                continue
            context = get_code_snippet(lines=lines, line_number=line_number)
            offered = {"filename": filename, "line": line, "line_number": line_number, "context": context}
            line_kept = None  # the line filters' verdict, asked once a plugin finds something
            for position in sorted(candidates):
                plugin = self.plugins[position]
                found = plugin.find(offered)
                if not found:
                    continue
                if line_kept is None:
                    line_kept = not any(line_filter(offered) for line_filter in self.line_filters)
                if not line_kept:
                    break
                for secret in found:
                    checked = {"filename": secret.filename, "secret": secret.secret_value,
                               "plugin": plugin.plugin, "line": line, "context": context}
                    if any(secret_filter(checked) for secret_filter in self.secret_filters):
                        continue
                    if any(context_filter(checked) for context_filter in self.context_filters):
                        continue
                    yield secret
