"""An input a worker finished but whose intermediate files the driver cannot see fails the run.

On a multi-node cluster whose work dir is on each node's own disk, a worker's completion marker lands
where the driver never looks; the input must not be dropped as if skipped under the error policy.
"""

from __future__ import annotations

import pytest

from dolma_pipeline.config import from_dict
from dolma_pipeline.errors import DolmaError
from dolma_pipeline.tokenize import command


def test_an_encoded_input_the_driver_cannot_see_is_an_error(corpus, tmp_path, monkeypatch):
    real = command.read_marker
    unseen = []

    def as_seen_from_the_driver(shard):  # the first input's marker is on another node's disk
        if shard.output.endswith(".tokens") and (not unseen or unseen[0] == shard.input):
            unseen.append(shard.input)
            return None
        return real(shard)

    monkeypatch.setattr(command, "read_marker", as_seen_from_the_driver)
    config = from_dict(command.Config, {"documents": [corpus], "destination": str(tmp_path / "out"), "debug": True})
    with pytest.raises(DolmaError, match="1 encoded input.*no completion marker.*--work_dir"):
        command.run(config)
    assert not list((tmp_path / "out").glob("part-*.npy"))  # nothing written that would lack its documents
