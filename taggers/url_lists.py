"""Reading URL block and allow lists as Dolma reads them, and one matcher for Adblock Plus rules.

Lists (hosts files, plain domain lists, `||domain^` lines, Wikidata JSON) become a set of keys as in
Dolma's URL taggers: a URL's key is `host[:port][/path]` lower-cased without its trailing "/", a domain's
keys are its host with leading "w" and "." characters removed (Dolma's `lstrip("www.")`, which also turns
"web.com" into "eb.com": kept, so the same documents match) and that with "www." in front.

Adblock Plus lists go to `AdblockMatcher`: `||domain^` rules (most of every list) are looked up by the
URL host's suffixes in a dict, the other network rules by an Aho-Corasick automaton (pyahocorasick) over
their longest literal, each candidate then checked by its own compiled pattern; `@@` exceptions the same
way. As Dolma's adblock engine with an unknown request type and no source page: rules restricted to
other request types, to first-party requests, to source domains, or with options it does not apply here
(`csp`, `removeparam`, `badfilter`, `match-case`, cosmetic `##` rules) never match.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from typing import Any

_URL = r"(([a-z0-9\-_]+\.?){2,}|localhost|localdomain)"
_ONLY_URL = re.compile(f"^{_URL}")
_ADBLOCK_DOMAIN = re.compile(f"\\|+{_URL}\\^")
_IP_AND_URL = re.compile(f"([0-9a-f\\.\\:]+)\\s+{_URL}")


def _is_ip(text: str) -> bool:
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            socket.inet_pton(family, text)
            return True
        except (OSError, ValueError):
            pass
    return False


_LOOSE_URL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?(?://)?(?:[^@/?#]*@)?([^/?#]*?)(?::(\d*))?([/][^?#]*)?(?:[?#].*)?$",
                        re.S)


def _parse(url: str) -> tuple[str | None, int | None, str | None]:
    """(host, port, path) by urllib3; hosts that urllib3 2 rejects (spaces, ...) split as urllib3 1.26 did."""
    import urllib3.util
    from urllib3.exceptions import LocationParseError

    try:
        parsed = urllib3.util.parse_url(url)
        return parsed.host, parsed.port, parsed.path
    except LocationParseError:
        match = _LOOSE_URL.match(url)
        if match is None:
            return None, None, None
        host, port, path = match.groups()
        return host.lower() or None, int(port) if port else None, path


def url_key(url: str | None) -> list[str]:
    """Dolma's cleaned URL: host, port and path, lower-cased, without the trailing "/" ([] when empty)."""
    if url is None or not url.strip():
        return []
    host, port, path = _parse(url)
    return [f"{host}{f':{port}' if port else ''}{path or ''}".rstrip("/").lower()]


def domain_keys(url: str | None) -> list[str]:
    """Dolma's domain keys of a URL: its host without leading "w"/"." characters, and with "www." added."""
    out = []
    for key in url_key(url):
        host = _parse(key)[0]
        if not host:
            return out
        host = host.lstrip("w.")  # Dolma's lstrip("www."): the characters "w" and "."
        out += [host, f"www.{host}"]
    return out


def wikidata_keys(url: str | None) -> list[str]:
    """Domain keys plus, for each with more than two dots, its last two labels (Dolma's `get_base_domain`)."""
    out = []
    for key in domain_keys(url):
        out.append(key)
        out.append(".".join(key.rsplit(".", 2)[1:]) if key.count(".") > 2 else key)
    return out


def list_line_keys(line: str, keys: Any = domain_keys) -> Iterator[str]:
    """The keys of one line of a hosts/domain/`||domain^` list; nothing for comments and unreadable lines."""
    line = line.strip().lower()
    if not line or line.startswith(("#", ";", "!")):
        return
    if match := _IP_AND_URL.match(line):
        ip, host = match.group(1), match.group(2)
        if not _is_ip(ip):
            return
        # Dolma means to skip localhost addresses here, but its check never matches: they are kept.
        yield ip
        if host not in ("localhost", "localdomain"):
            yield from keys(host)
    elif _ONLY_URL.match(line):
        yield from keys(line)
    elif match := _ADBLOCK_DOMAIN.match(line):
        yield match.group(1)


def read_lines(path: str) -> Iterator[str]:
    import smart_open

    with smart_open.open(path, "rt", encoding="utf-8", errors="replace") as f:
        yield from f


def wikidata_line_keys(line: str) -> Iterator[str]:
    """Keys of one line of a Wikidata SPARQL JSON response (a list of rows with a `url`)."""
    try:
        rows = json.loads(line)
    except ValueError:
        return
    for row in rows if isinstance(rows, list) else []:
        try:
            for key in wikidata_keys(row["url"]):
                yield from list_line_keys(key, wikidata_keys)
        except Exception:  # a row without a readable URL is skipped, as Dolma does
            continue


# ---------------------------------------------------------------------------------------------------------
# Adblock Plus network rules

_TYPES = {"script", "image", "stylesheet", "object", "xmlhttprequest", "subdocument", "ping", "media", "font",
          "websocket", "webrtc", "document", "popup", "object-subrequest", "beacon", "csp_report", "xhr", "css",
          "frame", "doc", "other", "all", "popunder", "inline-script", "inline-font"}
_ALWAYS = {"third-party", "3p", "important", "other"}


def _applies(options: str) -> bool:
    """Whether a rule with these `$` options can match a request of unknown type from no source page."""
    names = [o.strip().lower() for o in options.split(",") if o.strip()]
    positive_types = [n for n in names if n in _TYPES and n != "other"]
    if positive_types and "other" not in names:
        return False
    for name in names:
        if name in _ALWAYS or name in _TYPES and name not in ("all", "document", "doc", "popup"):
            continue
        if name.startswith("~") and name[1:] in _TYPES and name[1:] != "other":
            continue
        if name.startswith(("redirect=", "redirect-rule=")):
            continue
        if name.startswith("domain=") and all(d.startswith("~") for d in name[7:].split("|")):
            continue
        return False
    return True


def _pattern(rule: str) -> str:
    """A rule body (`||`, `|`, `*`, `^`) as a regex over the lower-cased URL."""
    start = ""
    if rule.startswith("||"):
        start, rule = r"^[a-z][a-z0-9+.-]*://([^/?#]*\.)?", rule[2:]
    elif rule.startswith("|"):
        start, rule = "^", rule[1:]
    end = ""
    if rule.endswith("|"):
        end, rule = "$", rule[:-1]
    body = "".join(".*" if c == "*" else r"(?:[^\w.%-]|$)" if c == "^" else re.escape(c) for c in rule)
    return start + body + end


class _RuleSet:
    """Rules of one kind (blocking or exception): a host-suffix dict and an Aho-Corasick automaton."""

    def __init__(self) -> None:
        self.hosts: set[str] = set()
        self.patterns: list[tuple[str, str]] = []  # (literal, regex source)
        self.automaton: Any = None
        self.compiled: dict[int, re.Pattern] = {}

    def add(self, rule: str) -> None:
        if rule.startswith("||") and rule.endswith("^") and re.fullmatch(r"[a-z0-9.\-_]+", rule[2:-1]):
            self.hosts.add(rule[2:-1])
            return
        if len(rule) > 1 and rule.startswith("/") and rule.endswith("/"):
            self.patterns.append(("", rule[1:-1]))
            return
        literals = [p for p in re.split(r"[*^|]", rule) if p]
        self.patterns.append((max(literals, key=len) if literals else "", _pattern(rule)))

    def build(self) -> None:
        import ahocorasick

        self.automaton = ahocorasick.Automaton()
        for i, (literal, _) in enumerate(self.patterns):
            if literal:
                self.automaton.add_word(literal, self.automaton.get(literal, ()) + (i,))
        if len(self.automaton):
            self.automaton.make_automaton()
        self.always = [i for i, (literal, _) in enumerate(self.patterns) if not literal]

    def _check(self, i: int, url: str) -> bool:
        if i not in self.compiled:
            try:
                self.compiled[i] = re.compile(self.patterns[i][1])
            except re.error:
                self.compiled[i] = re.compile(r"(?!)")
        return self.compiled[i].search(url) is not None

    def matches(self, url: str, host: str) -> bool:
        labels = host.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            if suffix in self.hosts:
                rest = url[url.index(host) + len(host):] if host in url else ""
                if not rest or not (rest[0].isalnum() or rest[0] in "_.%-"):
                    return True
        candidates = set(self.always)
        if self.automaton is not None and len(self.automaton):
            for _, found in self.automaton.iter(url):
                candidates.update(found)
        return any(self._check(i, url) for i in sorted(candidates))


class AdblockMatcher:
    """Adblock Plus network rules (`@@` exceptions included) matched against URLs."""

    def __init__(self, rules: list[str]):
        self.block, self.allow = _RuleSet(), _RuleSet()
        for raw in rules:
            rule = raw.strip()
            if not rule or rule.startswith(("!", "[")) or "##" in rule or "#@#" in rule or "#?#" in rule:
                continue
            target = self.block
            if rule.startswith("@@"):
                target, rule = self.allow, rule[2:]
            rule, _, options = rule.partition("$") if not rule.startswith("/") else (rule, "", "")
            if (options and not _applies(options)) or not rule:
                continue
            target.add(rule.lower())
        self.block.build()
        self.allow.build()

    def __len__(self) -> int:
        return len(self.block.hosts) + len(self.block.patterns)

    def blocked(self, url: str) -> bool:
        """Whether `url` (scheme optional, http assumed) is blocked and not excepted."""
        url = url.lower()
        if "://" not in url:
            url = "http://" + url
        host = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
        return self.block.matches(url, host) and not self.allow.matches(url, host)
