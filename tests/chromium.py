"""Render an offline HTML page in headless Chromium (where installed; CI installs it) and check that every
image it names is there and that a real page came out, not a blank one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path


def images_of(page: Path) -> list[str]:
    """The ``src`` of every ``<img>`` of a page, checked to be a local, non-trivial file beside it."""
    names = re.findall(r'<img[^>]*\bsrc="([^"]+)"', page.read_text())
    for name in names:
        assert (page.parent / name).stat().st_size > 1000, name
    return names


def render_in_headless_chromium(page: Path, height: int = 3800) -> Path | None:
    """Screenshot ``page`` offline; None where no Chromium is installed."""
    images_of(page)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return None
    shot = page.parent / "screenshot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={page.parent / 'chromium-profile'}", f"--window-size=1200,{height}",
                    f"--screenshot={shot}", f"file://{page}"],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000  # plots rendered, not a blank page
    return shot
