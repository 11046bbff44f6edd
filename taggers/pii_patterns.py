"""The patterns of `pii_regex_v3`: spans that cover exactly the PII, nothing around it.

- E-mail: `local@domain.tld` with word boundaries (also at the very end of the text), plus the common
  bracketed obfuscations `name [at] example [dot] com`, `name(at)example.com`, `name AT example DOT com`.
- IPv4 with boundaries (not inside `1.2.3.4.5`, `v1.2.3.4` or a longer number) and IPv6, validated with
  `ipaddress` (times, MAC addresses and `std::` are not addresses).
- Phone numbers: international (`+CC ...`) and national formats with separators (US, UK, DE, FR, JP, ...),
  9 to 15 digits (8 to 15 after `+`); dates, IPv4 addresses and long digit runs without separators are not
  phone numbers.
- Phone numbers and IPs preceded on their line by "ISBN", "DOI" or "version" (any case) are not PII.
"""

from __future__ import annotations

import bisect
import ipaddress
import re

EMAIL = "EMAIL_ADDRESS"
PHONE = "PHONE_NUMBER"
IP = "IP_ADDRESS"

_LOCAL = r"[\w%+'-]+(?:\.[\w%+'-]+)*"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_EMAIL = re.compile(rf"(?<![\w.%+'-]){_LOCAL}@(?:{_LABEL}\.)+([^\W\d_]{{2,}})(?![\w-]|\.[^\W_])")
# `logo@2x.png`: asset names, not addresses.
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "pdf", "css", "js"})
# Obfuscated: the "at"/"dot" words must be bracketed, or upper-case with spaces around them.
_AT = r"(?:\s*[\[({<]\s*(?:at|AT|@)\s*[\])}>]\s*|\s+AT\s+)"
_DOT = r"(?:\s*[\[({<]\s*(?:dot|DOT|\.)\s*[\])}>]\s*|\s+DOT\s+|\.)"
_OBFUSCATION_HINT = re.compile(r"[\[({<]\s*(?:at|AT|@)\s*[\])}>]|\sAT\s")
_EMAIL_OBFUSCATED = re.compile(
    rf"(?<![\w.%+'-])[\w%+'-]+(?:{_DOT}[\w%+'-]+)*{_AT}{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}[^\W\d_]{{2,}}(?![\w-])")

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)")
_IPV6_CANDIDATE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}|:)?(?::[0-9A-Fa-f]{0,4}){2,7}(?::\d{1,3}(?:\.\d{1,3}){3}|\.\d{1,3}(?:\.\d{1,3}){2})?"
    r"(?![\w:])")

_SEP = r"[ .\-\u00a0]"
_PHONE = re.compile(
    rf"""(?<![\w+.,/#=-])(?<!\d[ .,])
    (?:
        \+\d{{1,3}}{_SEP}?(?:\(0?\d{{1,4}}\){_SEP}?|\d{{1,5}}{_SEP}?)(?:\d{{2,5}}{_SEP}?){{1,4}}\d{{1,5}}
      | \+\d{{7,14}}\d
      | (?:1{_SEP})?\(\d{{2,5}}\){_SEP}?\d{{2,5}}(?:{_SEP}\d{{2,5}}){{0,3}}
      | (?:1{_SEP})?\d{{2,5}}(?:{_SEP}\d{{2,5}}){{2,4}}
      | \d{{2,5}}[ /\-]\d{{5,8}}
    )
    (?![\w+]|[.,\-/]\d)""",
    re.VERBOSE,
)
# A date at the start of a candidate ("2023-01-15 10" before "10:30") is not a phone number.
_DATE_LIKE = re.compile(r"(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])(?!\d)"
                        r"|(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)\d\d(?!\d)")
# Without a country code a number is a phone number when it has the North American 3-3-4 shape or starts
# with a trunk prefix 0 (UK, DE, FR, JP, ...); other digit groups are more often tables, codes or amounts.
_US_SHAPE = re.compile(rf"(?:1{_SEP})?(?:\(\d{{3}}\)|\d{{3}}){_SEP}?\d{{3}}{_SEP}\d{{4}}$")
_SUPPRESS_CONTEXT = re.compile(r"isbn|doi|version|ver\.|release|section|chapter|\u00a7", re.IGNORECASE)
CONTEXT_CHARS = 30


def _suppressed(text: str, start: int) -> bool:
    """An ISBN/DOI/version word shortly before `start` on the same line."""
    line_start = text.rfind("\n", 0, start) + 1
    return _SUPPRESS_CONTEXT.search(text, max(line_start, start - CONTEXT_CHARS), start) is not None


def _valid_ipv6(candidate: str) -> bool:
    """A valid IPv6 address with a digit and two groups (or the loopback `::1`): not `a::b`, `[::2]`, 12:30:45."""
    if candidate != "::1" and (sum(1 for g in candidate.split(":") if g) < 2
                               or not any(c.isdigit() for c in candidate)):
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def _is_phone(number: str) -> bool:
    digits = sum(c.isdigit() for c in number)
    if number.startswith("+"):
        return 8 <= digits <= 15
    if not 9 <= digits <= 15 or _DATE_LIKE.match(number) or _IPV4.fullmatch(number):
        return False
    return _US_SHAPE.match(number) is not None or number.lstrip("(").startswith("0")


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, type) in text order; e-mails win over IPs, IPs over phone numbers."""
    found: list[tuple[int, int, str]] = []
    if "@" in text:
        found.extend((m.start(), m.end(), EMAIL) for m in _EMAIL.finditer(text)
                     if m.group(1).lower() not in _FILE_SUFFIXES)
    if _OBFUSCATION_HINT.search(text):
        found.extend((m.start(), m.end(), EMAIL) for m in _EMAIL_OBFUSCATED.finditer(text))
    if "." in text:
        found.extend((m.start(), m.end(), IP) for m in _IPV4.finditer(text) if not _suppressed(text, m.start()))
    if "::" in text or text.count(":") >= 7:
        found.extend((m.start(), m.end(), IP) for m in _IPV6_CANDIDATE.finditer(text)
                     if _valid_ipv6(m.group()) and not _suppressed(text, m.start()))
    found.extend((m.start(), m.end(), PHONE) for m in _PHONE.finditer(text)
                 if _is_phone(m.group()) and not _suppressed(text, m.start()))
    return _without_overlaps(found)


_PRIORITY = {EMAIL: 0, IP: 1, PHONE: 2}


def _without_overlaps(found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Keep spans by priority, dropping any that overlaps a kept one (`kept` stays sorted by start)."""
    if len(found) < 2:
        return found
    kept: list[tuple[int, int, str]] = []
    for span in sorted(found, key=lambda s: (_PRIORITY[s[2]], s[0], -s[1])):
        i = bisect.bisect_left(kept, span)
        if (i and kept[i - 1][1] > span[0]) or (i < len(kept) and kept[i][0] < span[1]):
            continue
        kept.insert(i, span)
    return kept
