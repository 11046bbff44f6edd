"""The rules that keep a config from destroying data or leaking secrets, written once and called by every command.

- `check_name`: a name that becomes one path component (a dedupe or decontaminate name, a mix stream,
  an experiment, a tokenize group, a pipeline stage) has no path separator, is not `.` or `..`, and is
  not empty.
- `check_outputs`: an output that resolves to an input file, or to the directory holding an input
  file, is refused before anything is written.
- `claim_dir` / `remove_owned_dir`: the tool deletes only directories it created; creating one writes
  a sentinel file into it, and removal refuses a directory without the sentinel (a user's
  `work_dir: /scratch` is never wiped).
- `redact`: credentials inside a URL (`s3://KEY:SECRET@bucket/...`) are stripped from every path the
  tool records (configs, markers, summaries, lineage, reports, error messages).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable
from typing import Any

from dolma_pipeline import io
from dolma_pipeline.errors import ConfigError

log = logging.getLogger(__name__)

SENTINEL = ".dolma-pipeline-owned"

# ------------------------------------------------------------------------------------------------- names
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(value: str, what: str) -> str:
    """`value` unchanged if it can serve as one path component, else a ConfigError naming `what`."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must not be empty")
    if value in (".", ".."):
        raise ConfigError(f"{what} {value!r} is not a valid name (it would name a directory, not a new one)")
    if "/" in value or "\\" in value:
        raise ConfigError(f"{what} {value!r} must not contain a path separator ('/' or '\\')")
    if _CONTROL.search(value):
        raise ConfigError(f"{what} {value!r} must not contain control characters")
    return value


# ------------------------------------------------------------------------------------------------- paths
class _Canonical:
    """Canonical spellings of paths, resolving symlinks once per directory (a million inputs share a few)."""

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        path = strip_credentials(path).removeprefix("file://")
        if "://" in path:
            return io.canonical_path(path).rstrip("/")
        directory, name = os.path.split(os.path.abspath(os.path.expanduser(path)))
        real = self._dirs.get(directory)
        if real is None:
            real = self._dirs[directory] = os.path.realpath(directory)
        return os.path.join(real, name).rstrip("/") or "/"


def check_outputs(inputs: Iterable[str], output_files: Iterable[str] = (), output_dirs: Iterable[str] = (),
                  what: str = "output") -> None:
    """Refuse (ConfigError) an output file that is an input file, or an output directory that is an input
    file or the directory holding one. Paths are compared after resolving `..`, symlinked directories
    and `file://`."""
    canonical = _Canonical()
    input_files = {canonical(p): p for p in inputs}
    input_dirs: dict[str, str] = {}
    for path, original in input_files.items():
        input_dirs.setdefault(path.rsplit("/", 1)[0] or "/", original)
    for path in output_files:
        hit = input_files.get(canonical(path))
        if hit is not None:
            raise ConfigError(f"{what} {redact(path)} is the input file {redact(hit)}: refusing to overwrite an "
                              "input (check --destination, the experiment or dedupe name)")
    for path in output_dirs:
        if not path:
            continue
        local = strip_credentials(path).removeprefix("file://")
        resolved = canonical(local) if "://" in local else os.path.realpath(os.path.expanduser(local)).rstrip("/") or "/"
        if resolved in input_files:
            raise ConfigError(f"{what} directory {redact(path)} is the input file {redact(input_files[resolved])}")
        if resolved in input_dirs:
            raise ConfigError(f"{what} directory {redact(path)} is the directory holding the input "
                              f"{redact(input_dirs[resolved])}: choose a directory apart from the inputs")


# ------------------------------------------------------------------------------------ owned directories
def is_owned(path: str) -> bool:
    return os.path.isfile(os.path.join(path, SENTINEL))


def claim_dir(path: str) -> bool:
    """Create local directory `path` as the tool's own (with a sentinel), or recognise it as such.

    Returns False, and writes nothing into it, when `path` already exists without the sentinel.
    """
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        os.mkdir(path)
    except FileExistsError:
        return is_owned(path)
    with open(os.path.join(path, SENTINEL), "w") as fh:
        fh.write("created by dolma-pipeline; the tool may delete this directory and everything in it\n")
    return True


def owned_work_dir(path: str, subdir: str) -> str:
    """`path` if it is (or can become) the tool's own directory, else `path/subdir` (claimed there).

    A user's existing directory (e.g. `/scratch`) is used as a parent and never deleted.
    """
    if claim_dir(path):
        return path
    inner = os.path.join(path, subdir)
    if not claim_dir(inner):
        raise ConfigError(f"work directory {inner} exists and was not created by dolma-pipeline "
                          f"(no {SENTINEL} file); remove it or choose another work_dir")
    log.info("work_dir %s was not created by dolma-pipeline: intermediate files go to %s", path, inner)
    return inner


def remove_owned_dir(path: str) -> bool:
    """Delete local directory `path` if the tool created it (sentinel present); True if deleted.

    A directory without the sentinel is left in place with a warning: it may hold someone's data.
    """
    if not os.path.lexists(path):
        return False
    if os.path.islink(path) or not is_owned(path):
        log.warning("not deleting %s: it was not created by dolma-pipeline (no %s file)", path, SENTINEL)
        return False
    try:
        shutil.rmtree(path)
    except OSError as e:  # the run's outputs are complete: a cleanup failure is not a failed run
        log.warning("could not remove work directory %s: %s", path, e)
        return False
    return True


# ------------------------------------------------------------------------------------------- credentials
# scheme://KEY:SECRET@rest: the key has no '/', the secret may (AWS secrets do), both end at the first '@'
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<key>[^@\s/:]*):(?P<secret>[^@\s]*)@")


def strip_credentials(url: str) -> str:
    """`url` without a `KEY:SECRET@` part after its scheme."""
    return _USERINFO.sub(r"\g<scheme>", url) if "@" in url else url


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(url without credentials, (key, secret)) for `scheme://KEY:SECRET@...`, else (url, None)."""
    m = _USERINFO.match(url)
    if not m:
        return url, None
    return m.group("scheme") + url[m.end():], (m.group("key"), m.group("secret"))


def redact(value: Any) -> Any:
    """`value` with URL credentials stripped from every string in it (dicts, lists and tuples walked)."""
    if isinstance(value, str):
        return strip_credentials(value) if "@" in value else value
    if isinstance(value, dict):
        return {redact(k): redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that strips URL credentials from each record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = strip_credentials(message), None
        return True
