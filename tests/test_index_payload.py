"""An application's versioned payload in a SparseIndex file (``payload_format=``): the one persistence helper
the adapters' retrievers save and load through.

Every failure mode of a save or a load is here: a save that fails or is killed at any step leaves the
previous file and payload, a payload of another format or a newer version or no payload is refused, and
an older layout's payload is read through ``legacy_payload``.  The adapters' tests only check that their
retrievers round-trip through it.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from splade_onnx import (
    ArgumentError,
    ArgumentTypeError,
    FileMissingError,
    IndexFormatError,
    ModelIdentity,
    ModelMismatchError,
    SparseEmbedding,
    SparseIndex,
)
from splade_onnx import _index_file as index_file
from splade_onnx.integration import PayloadFormat

from harness import kill_when_stalled

APP = PayloadFormat("my-app-documents", 2, reader="my-app")
DOCS = {"a": {"text": "old a"}, "b": {"text": "old b"}}
MODEL = ModelIdentity("m", 50, "ab12")
QUERY = SparseEmbedding.from_dict({7: 1.0, 3: 2.0})
NOT_APP = "holds no my-app payload (format 'my-app-documents' expected, "


def index_of(texts: str, model: ModelIdentity | None = MODEL) -> SparseIndex:
    """Two documents; ``texts`` ("old" or "new") decides their vectors, so a mix of saves would show."""
    index = SparseIndex(model=model)
    weights = {"old": (1.0, 2.0), "new": (3.0, 0.5)}[texts]
    vectors = [SparseEmbedding.from_dict({1: 1.0, 7: weights[0]}), SparseEmbedding.from_dict({3: weights[1]})]
    index.add(vectors, ids=["a", "b"])
    return index


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A good save of the "old" index with its payload."""
    path = tmp_path / "index.npz"
    index_of("old").save(path, payload={"k": 3, "documents": DOCS}, payload_format=APP)
    return path


def assert_old(path: Path) -> None:
    loaded = SparseIndex.load(path, model=MODEL, payload_format=APP)
    assert loaded.payload == {"format": APP.name, "version": 2, "k": 3, "documents": DOCS}
    assert loaded.search(QUERY) == index_of("old").search(QUERY)


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def test_a_payload_round_trips_with_its_format_and_version(saved: Path) -> None:
    assert_old(saved)
    # The layout the adapters' files have always had: the caller's dict plus "format" and "version".
    assert SparseIndex.load(saved).payload == {"format": "my-app-documents", "version": 2, "k": 3, "documents": DOCS}
    index = SparseIndex.load(saved, payload_format=PayloadFormat("my-app-documents", 3, reader="my-app"))
    assert index.payload["version"] == 2  # an older version is read by a newer reader


def test_a_file_written_without_the_helper_in_the_same_layout_loads(tmp_path: Path) -> None:
    """The adapters' files written before the helper existed: the same dict, passed as a plain payload."""
    path = tmp_path / "index.npz"
    index_of("old").save(path, payload={"format": APP.name, "version": 1, "k": 3, "documents": DOCS})
    assert SparseIndex.load(path, payload_format=APP).payload["documents"] == DOCS


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"format": "someone-else", "version": 1}, f"{NOT_APP}found 'someone-else')"),
        ({"version": 1}, f"{NOT_APP}found None)"),
        (["my-app-documents"], f"{NOT_APP}found 'list')"),
        (
            {"format": APP.name, "version": 3},
            "has my-app-documents version 3; this my-app reads version 2 at most: upgrade my-app",
        ),
        ({"format": APP.name, "version": "2"}, "has my-app-documents version '2'"),
        ({"format": APP.name}, "has my-app-documents version None"),
    ],
)
def test_a_payload_of_another_format_or_a_newer_version_is_refused(tmp_path: Path, payload: Any, message: str) -> None:
    path = tmp_path / "index.npz"
    index_of("old").save(path, payload=payload)
    with pytest.raises(IndexFormatError, match=re.escape(f"{path} {message}")):
        SparseIndex.load(path, payload_format=APP)
    assert SparseIndex.load(path).payload == payload  # without payload_format nothing is checked


def test_a_missing_payload_is_refused_or_read_from_the_legacy_layout(tmp_path: Path) -> None:
    path, sidecar = tmp_path / "index.npz", tmp_path / "documents.json"
    index_of("old", model=None).save(path)  # an older layout: no model, no payload, the documents beside it
    with pytest.raises(IndexFormatError, match=re.escape(f"{path} holds no payload; expected the my-app payload")):
        SparseIndex.load(path, payload_format=APP)

    def legacy() -> dict[str, Any]:
        if not sidecar.is_file():
            raise FileMissingError(f"{path} holds no documents and {sidecar} is missing")
        return dict(json.loads(sidecar.read_text()))

    with pytest.raises(FileMissingError, match=re.escape("documents.json is missing")):
        SparseIndex.load(path, payload_format=APP, legacy_payload=legacy)
    sidecar.write_text(json.dumps({"format": "my-app-legacy", "documents": DOCS}))
    loaded = SparseIndex.load(path, payload_format=APP, legacy_payload=legacy)
    assert loaded.payload == {"format": "my-app-legacy", "documents": DOCS}  # the legacy reader checks its own
    assert loaded.search(QUERY) == index_of("old").search(QUERY)
    # A file with a payload never reads the legacy layout, even with a stale sidecar beside it.
    index_of("new").save(path, payload={"documents": {}}, payload_format=APP)
    assert SparseIndex.load(path, payload_format=APP, legacy_payload=legacy).payload["documents"] == {}


def test_a_payload_the_format_cannot_wrap_is_refused_before_anything_is_written(saved: Path) -> None:
    before = saved.read_bytes()
    with pytest.raises(ArgumentError, match=re.escape("payload keys ['version'] are the payload_format's own")):
        index_of("new").save(saved, payload={"version": 9, "documents": {}}, payload_format=APP)
    with pytest.raises(ArgumentTypeError, match="a payload with a payload_format must be a dict, got list"):
        index_of("new").save(saved, payload=[1, 2], payload_format=APP)
    with pytest.raises(ArgumentError, match=re.escape("payload['documents']['b']['day'] is a date")):
        bad = {"documents": {"a": {}, "b": {"day": date(2024, 1, 1)}}}
        index_of("new").save(saved, payload=bad, payload_format=APP)
    assert saved.read_bytes() == before and temporaries(saved.parent) == []
    assert_old(saved)


def test_payload_formats_are_checked() -> None:
    with pytest.raises(ArgumentError, match=re.escape("PayloadFormat.version must be an int >= 1, got 0")):
        PayloadFormat("x", 0, reader="r")
    with pytest.raises(ArgumentTypeError, match=re.escape("PayloadFormat.reader must be a non-empty str")):
        PayloadFormat("x", 1, reader="")


def test_the_model_is_checked_before_the_payload(saved: Path) -> None:
    other = ModelIdentity("someone/other", 50, "0" * 64)
    with pytest.raises(ModelMismatchError, match="was built by m"):
        SparseIndex.load(saved, model=other, payload_format=APP)
    assert SparseIndex.load(saved, model=other, allow_model_mismatch=True, payload_format=APP).payload["k"] == 3


def _half_written_savez(file: Any, *args: Any, **kwargs: Any) -> None:
    file.write(b"PK\x03\x04 half an archive")
    raise OSError("disk full (injected)")


@pytest.mark.parametrize("step", ["np.savez", "os.replace"])
def test_a_save_failing_at_any_step_keeps_the_previous_file_and_payload(
    step: str, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if step == "np.savez":
        monkeypatch.setattr(index_file, "write_npz", _half_written_savez)
    else:

        def no_rename(*args: Any) -> None:
            raise OSError("rename failed (injected)")

        monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="injected"):
        index_of("new").save(saved, payload={"k": 1, "documents": {}}, payload_format=APP)
    monkeypatch.undo()
    assert_old(saved)
    assert temporaries(saved.parent) == []


def test_a_save_is_one_rename(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """So there is no second step to fail: once the rename is done, the new file and payload are whole."""
    renames: list[tuple[Any, Any]] = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renames.append((src, dst)) or real(src, dst))
    index_of("new").save(saved, payload={"k": 1, "documents": {}}, payload_format=APP)
    assert len(renames) == 1 and Path(renames[0][1]) == saved
    monkeypatch.undo()
    loaded = SparseIndex.load(saved, payload_format=APP)
    assert loaded.payload["k"] == 1 and loaded.search(QUERY) == index_of("new").search(QUERY)


KILLED_SAVE = """
    from splade_onnx import ModelIdentity, SparseEmbedding, SparseIndex
    from splade_onnx.integration import PayloadFormat

    path, stall_at = sys.argv[1], sys.argv[2]
    index = SparseIndex(model=ModelIdentity("m", 50, "ab12"))
    index.add([SparseEmbedding.from_dict({1: 1.0, 7: 3.0}), SparseEmbedding.from_dict({3: 0.5})], ids=["a", "b"])
    stall_in_save(stall_at)
    index.save(path, payload={"k": 1, "documents": {}}, payload_format=PayloadFormat("my-app-documents", 2, "my-app"))
"""


@pytest.mark.parametrize("stall_at", ["np.savez", "after the first rename"])
def test_a_killed_save_leaves_the_previous_file_or_the_new_one(stall_at: str, saved: Path) -> None:
    """A process SIGKILLed during a save leaves one whole file and payload, never a mix; the next save sweeps
    its debris.  Killed while writing, the previous save is there; killed after its rename, the new one is."""
    kill_when_stalled(KILLED_SAVE, [str(saved), stall_at])
    if stall_at == "np.savez":
        assert len(temporaries(saved.parent)) == 1  # the half-written file it left
        assert_old(saved)
    else:
        loaded = SparseIndex.load(saved, model=MODEL, payload_format=APP)
        assert loaded.payload["k"] == 1 and loaded.search(QUERY) == index_of("new").search(QUERY)
    SparseIndex.load(saved).save(saved, payload={"k": 3, "documents": DOCS}, payload_format=APP)
    assert temporaries(saved.parent) == []
