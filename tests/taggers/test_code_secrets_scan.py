"""`LineScan` against detect-secrets' own line scan (the real library, the default settings `code_secrets_v1`
uses): the same secrets, in the same order, on edge and hostile inputs."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("detect_secrets")

from detect_secrets.core.scan import _process_line_based_plugins  # noqa: E402

from taggers.code_secrets import FILENAME, find_secrets, line_scan  # noqa: E402

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2"
       "MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
SECRET_LINES = [
    'aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"',
    'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    "-----BEGIN RSA PRIVATE KEY-----",
    f"token = '{JWT}'",
    'password = "hunter2xyz"',
    "db_password: s3cr3tP4ssw0rd",
    'key = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"',
    'blob = "c2VjcmV0IHNlY3JldCBzZWNyZXQgc2VjcmV0IHNlY3JldA=="',
    "url = https://admin:passw0rd@example.com/path",
    "slack = xoxb-123456789012-1234567890123-abcdefghijABCDEFGHIJklmn",
    "gh = ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "stripe = sk_live_abcdefghijklmnopqrstuvwx",
    "api_key: 'AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY'",
    # Keywords in other cases and spellings: "\u017f" (long s) and "\u212a" (Kelvin sign) match "s" and "k"
    # in a case-insensitive pattern.
    'PASSWORD: "hunter2xyz"',
    'contrase\u00f1a: "hunter2xyz"',
    '\u017fecret: "hunter2xyz"',
    'api_\u212aey: "hunter2xyz"',
    "if ('hunter2xyz' == db_password) {",
]
# Lines a plugin finds something on, dropped by a filter: the allowlist pragma, indirect references, a UUID,
# an id string, a sequential string, a secret without letters.
FILTERED_LINES = [
    'password = "hunter2xyz"  # pragma: allowlist secret',
    'password = get_secret("db")',
    "secret = request.headers['apikey']",
    'api_key = "123e4567-e89b-12d3-a456-426614174000"',
    'user_id = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c4"',
    'secret = "abcdefghijklmnopqrstuvwxyz"',
    "server = 8.8.8.8",
]
# Lines no plugin finds anything on.
QUIET_LINES = ["# pragma: allowlist nextline secret", 'password = "{password}"', 'password = "${SECRET_VALUE}"',
               "password = '<your password here>'", 'password = "$abcdef12345"', 'secret = "********"']
PLAIN_LINES = [*QUIET_LINES, "def f(x):", "    return x + 1", "", "   ", "\t", "// comment", "x = {'a': [1, 2, 3]}", "é ü ß 漢字",
               "=" * 50, "a" * 1500 + ' password = "hunter2xyz"', "password = " + "x" * 2000, "\x00\x01", "\ud800"]
SEPARATORS = ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]


def library_scan(lines: list[str]) -> list[tuple]:
    line_scan()  # enters detect-secrets' default settings (every plugin), which the library's scan reads
    return [(s.filename, s.type, s.secret_value, s.line_number, s.is_verified)
            for s in _process_line_based_plugins(lines=list(enumerate(lines, start=1)), filename=FILENAME)]


def our_scan(lines: list[str]) -> list[tuple]:
    return [(s.filename, s.type, s.secret_value, s.line_number, s.is_verified)
            for s in line_scan().scan(lines)]


EDGE_TEXTS = [
    "",
    "\n",
    "\n\n\r\n",
    "   \t  ",
    "\n".join(SECRET_LINES),
    "\n".join(FILTERED_LINES),
    "\n".join(SECRET_LINES + SECRET_LINES),  # the same secrets twice
    "# pragma: allowlist nextline secret\n" + SECRET_LINES[4],
    "\n".join(line + "   \t" for line in SECRET_LINES),  # trailing whitespace, stripped before the scan
    "\r\n".join(SECRET_LINES[:5]) + "\r\n",
    "\u2028".join(SECRET_LINES[:5]),
    "\n".join(PLAIN_LINES),
    "x" * 5000,
    JWT * 3,
]


@pytest.mark.parametrize("text", EDGE_TEXTS, ids=range(len(EDGE_TEXTS)))
def test_line_scan_finds_what_detect_secrets_finds(text):
    lines = text.splitlines()
    assert our_scan(lines) == library_scan(lines)


def test_line_scan_on_shuffled_documents():
    """Random documents of secret, filtered and plain lines joined by every line separator."""
    rng = random.Random(1234)
    pool = SECRET_LINES + FILTERED_LINES + PLAIN_LINES
    found = 0
    for _ in range(60):
        text = "".join(rng.choice(pool) + rng.choice(SEPARATORS) for _ in range(rng.randint(1, 30)))
        lines = text.splitlines()
        expected = library_scan(lines)
        assert our_scan(lines) == expected
        found += len(expected)
    assert found > 100  # the documents do hold secrets


def plugin_findings(line: str) -> list:
    return [secret for plugin in line_scan().plugins
            for secret in plugin.analyze_line(filename=FILENAME, line=line, line_number=1, context=None)]


def test_the_filters_are_exercised():
    """Secret lines are found; each filtered line is found by a plugin and dropped by a filter."""
    found_types = {row[1] for row in library_scan(SECRET_LINES)}
    assert {"AWS Access Key", "Private Key", "JSON Web Token", "Secret Keyword", "Basic Auth Credentials",
            "Hex High Entropy String", "GitHub Token", "Slack Token", "Stripe Access Key"} <= found_types
    for line in FILTERED_LINES:
        assert plugin_findings(line)
        assert our_scan([line]) == library_scan([line]) == []
    pragma_then_secret = ["# pragma: allowlist nextline secret", SECRET_LINES[4]]
    assert our_scan(pragma_then_secret) == library_scan(pragma_then_secret) == []


def test_find_secrets_is_distinct_per_value_and_type():
    text = "\n".join(SECRET_LINES + ["", "x = 1"] + SECRET_LINES)
    secrets = find_secrets(text)
    keys = [(s.secret_hash, s.type) for s in secrets]
    assert len(keys) == len(set(keys))
    assert all(s.line_number <= len(SECRET_LINES) for s in secrets)  # the first occurrence is kept
