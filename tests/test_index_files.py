"""SparseIndex files: crafted and damaged files are an IndexFormatError with bounded memory; saves that
fail or are killed leave the previous file, and their temporary files are swept."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import struct
import subprocess
import sys
import threading
import tracemalloc
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
import numpy.lib.format as npy_format
import pytest

from splade_onnx import ArgumentError, IndexFormatError, ModelIdentity, SparseEmbedding, SparseIndex
from splade_onnx import _index_file as index_file
from splade_onnx._json_io import too_deep

HUGE = 10**13  # elements a crafted header claims: 80 TB of int64

# ---------------------------------------------------------------------------- crafting files


def npy_bytes(shape: tuple[int, ...], descr: str, data: bytes = b"") -> bytes:
    """A .npy member: a version 1.0 header declaring ``shape`` and ``descr``, then ``data`` (whatever its size)."""
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"shape": shape, "fortran_order": False, "descr": descr})
    return buf.getvalue() + data


def array_bytes(a: np.ndarray[Any, Any]) -> bytes:
    buf = io.BytesIO()
    npy_format.write_array(buf, a, allow_pickle=True)
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes], compressed: Collection[str] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data, zipfile.ZIP_DEFLATED if name in compressed else zipfile.ZIP_STORED)
    return path


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def small_index(model: ModelIdentity | None = None) -> SparseIndex:
    index = SparseIndex(model=model)
    index.add(
        [SparseEmbedding.from_dict({1: 1.0, 7: 2.0}), SparseEmbedding.from_dict({3: 0.5, 7: 1.0})], ids=["a", "b"]
    )
    return index


def good_members(tmp: Path) -> dict[str, bytes]:
    small_index().save(tmp / "good.npz")
    return members_of(tmp / "good.npz")


def meta_bytes(ids: list[str], **extra: Any) -> bytes:
    meta = {
        "format": "splade-onnx-sparse-index",
        "format_version": 2,
        "ids": ids,
        "dim": None,
        "next_id": 0,
        "model": None,
        "library": "test",
        **extra,
    }
    return array_bytes(np.frombuffer(json.dumps(meta).encode(), np.uint8))


def craft_huge_header(path: Path) -> Path:
    """~300 bytes: one member whose header claims 10^13 int64 elements (numpy.load: MemoryError)."""
    return write_zip(path, {"format_version.npy": npy_bytes((HUGE,), "<i8", b"\x02" + b"\x00" * 7)})


def craft_huge_member(path: Path, tmp: Path, member: str) -> Path:
    """A real index whose ``member`` header claims 10^13 elements (its data is the real one)."""
    members = good_members(tmp)
    real = np.load(io.BytesIO(members[f"{member}.npy"]))
    members[f"{member}.npy"] = npy_bytes((HUGE,), real.dtype.str, real.tobytes())
    return write_zip(path, members)


def craft_zip_bomb(path: Path, tmp: Path, inflated: int) -> Path:
    """A real index whose ``doc_values`` is a deflated member inflating to ``inflated`` bytes of zeros."""
    members = good_members(tmp)
    del members["doc_values.npy"]
    members["doc_indptr.npy"] = array_bytes(np.array([0, inflated // 4], np.int64))
    members["meta.npy"] = meta_bytes(["a"])
    write_zip(path, members)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("doc_values.npy", "w", force_zip64=True) as w,
    ):
        w.write(npy_bytes((inflated // 4,), "<f4"))
        chunk = bytes(1 << 24)
        for start in range(0, inflated, len(chunk)):
            w.write(chunk[: inflated - start])
    return path


def craft_deep_json(path: Path, tmp: Path, depth: int, where: str = "meta") -> Path:
    """A real index with JSON nested ``depth`` levels in ``meta`` (as uint8) or ``payload``."""
    members = good_members(tmp)
    deep = ("[" * depth + "]" * depth).encode()
    if where == "meta":
        members["meta.npy"] = array_bytes(np.frombuffer(deep, np.uint8))
    else:
        members["payload.npy"] = array_bytes(np.frombuffer(deep, np.uint8))
    return write_zip(path, members)


def patch_directory(data: bytes, member: str, *, compress_size: int, file_size: int) -> bytes:
    """``data`` (a zip without zip64 fields) with ``member``'s sizes in the central directory replaced."""
    at = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack("<H", data[at + 28 : at + 30])[0]
        if data[at + 46 : at + 46 + name_len] == member.encode():
            break
        extra_len, comment_len = struct.unpack("<HH", data[at + 30 : at + 34])
        at += 46 + name_len + extra_len + comment_len
    return data[: at + 20] + struct.pack("<LL", compress_size, file_size) + data[at + 28 :]


def load_bounded(path: Path) -> tuple[BaseException | None, int]:
    """Load ``path``; return what it raised and the peak bytes traced (Python and numpy allocations) meanwhile."""
    tracemalloc.start()
    try:
        SparseIndex.load(path)
    except BaseException as exc:  # noqa: BLE001 - the caller checks it
        return exc, tracemalloc.get_traced_memory()[1]
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return None, peak


MB = 1 << 20

# ---------------------------------------------------------------------------- crafted files


def test_a_300_byte_file_claiming_1e13_elements_is_refused_from_its_header(tmp_path: Path) -> None:
    path = craft_huge_header(tmp_path / "huge.npz")
    assert path.stat().st_size < 400
    exc, peak = load_bounded(path)
    assert isinstance(exc, IndexFormatError) and isinstance(exc, ValueError)
    assert "format_version has dtype int64 and shape (10000000000000,)" in str(exc)
    assert peak < MB


@pytest.mark.parametrize("member", ["doc_indptr", "doc_indices", "doc_values", "payload"])
def test_a_member_header_claiming_1e13_elements_is_refused_before_reading(tmp_path: Path, member: str) -> None:
    if member == "payload":
        index = small_index()
        index.save(tmp_path / "p.npz", payload={"k": 1})
        members = members_of(tmp_path / "p.npz")
        members["payload.npy"] = npy_bytes((HUGE,), "|u1", b"{}")
        path = write_zip(tmp_path / "huge.npz", members)
    else:
        path = craft_huge_member(tmp_path / "huge.npz", tmp_path, member)
    exc, peak = load_bounded(path)
    assert isinstance(exc, IndexFormatError)
    assert f"{member}: its header declares 10000000000000 elements" in str(exc)
    assert peak < MB


def test_a_zip_bomb_is_refused_without_inflating_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = craft_zip_bomb(tmp_path / "bomb.npz", tmp_path, inflated=64 * MB)
    assert path.stat().st_size < MB
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    exc, peak = load_bounded(path)
    assert isinstance(exc, IndexFormatError)
    assert "doc_values.npy is compressed (zip method 8)" in str(exc)
    assert "doc_values.npy" not in opened  # refused from the zip directory: not one byte inflated
    assert peak < MB


def test_a_stored_member_whose_directory_sizes_lie_is_refused(tmp_path: Path) -> None:
    members = good_members(tmp_path)
    n = 100_000_000  # the header claims 400 MB of float32, and so does the zip directory
    members["doc_values.npy"] = npy_bytes((n,), "<f4", b"\x00" * 64)
    data = write_zip(tmp_path / "x.npz", members).read_bytes()
    declared = len(npy_bytes((n,), "<f4")) + 4 * n
    for name, compress_size in (("only_file_size", 64 + 128), ("both", declared)):
        path = tmp_path / f"{name}.npz"
        path.write_bytes(patch_directory(data, "doc_values.npy", compress_size=compress_size, file_size=declared))
        exc, peak = load_bounded(path)
        assert isinstance(exc, IndexFormatError), name
        assert f"doc_values.npy: the zip directory gives it {declared} bytes, which do not fit" in str(exc)
        assert peak < MB


@pytest.mark.parametrize("where", ["meta", "payload"])
def test_deeply_nested_json_is_refused_without_parsing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = craft_deep_json(tmp_path / "deep.npz", tmp_path, 200_000, where)
    parsed: list[int] = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda text, **kw: parsed.append(len(text)) or real_loads(text, **kw))
    exc, peak = load_bounded(path)
    assert isinstance(exc, IndexFormatError)
    assert f"{where} is JSON nested more than 256 levels deep" in str(exc)
    assert 400_000 not in parsed  # refused by the depth scan: json.loads never saw it
    assert peak < 16 * MB


def test_json_depth_scan() -> None:
    deep = "[" * 257 + "]" * 257
    assert too_deep(deep) and not too_deep("[" * 256 + "]" * 256)
    assert not too_deep(json.dumps(["[" * 1000, {"k": "{" * 500 + '\\"[[[['}]))  # brackets in strings
    assert not too_deep(json.dumps([[i] for i in range(10_000)]))  # many, but shallow
    assert too_deep(json.dumps({"a": "\\", "b": json.loads(deep)}))


def test_the_depth_limit_is_the_same_for_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    ok: Any = []
    for _ in range(255):  # 256 levels with the outer list
        ok = [ok]
    small_index().save(path, payload=ok)
    assert SparseIndex.load(path).payload == ok
    with pytest.raises(ArgumentError, match="payload nests lists and dicts more than 256 levels deep"):
        small_index().save(tmp_path / "deeper.npz", payload=[ok])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]


def test_pickles_are_refused(tmp_path: Path) -> None:
    members = good_members(tmp_path)
    members["meta.npy"] = array_bytes(np.array([{"format": "splade-onnx-sparse-index"}], dtype=object))
    with pytest.raises(IndexFormatError, match=r"meta holds Python objects \(a pickle\)"):
        SparseIndex.load(write_zip(tmp_path / "pickled.npz", members))


def test_unknown_members_are_ignored_unread(tmp_path: Path) -> None:
    members = good_members(tmp_path)
    members["notes.npy"] = npy_bytes((HUGE,), "<f8")  # never read, so its lies cost nothing
    members["README.txt"] = b"hello"
    members["doc_titles.npy"] = array_bytes(np.array(["x", "y"]))
    path = write_zip(tmp_path / "extra.npz", members, compressed={"README.txt", "doc_titles.npy"})
    loaded = SparseIndex.load(path)
    assert loaded.ids == ["a", "b"] and loaded.search(SparseEmbedding.from_dict({7: 1.0})) == [("a", 2.0), ("b", 1.0)]


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    members = good_members(tmp_path)
    path = write_zip(tmp_path / "dup.npz", members)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("meta.npy", meta_bytes(["x", "y"]))
    with pytest.raises(IndexFormatError, match=r"duplicate zip members \['meta.npy'\]"):
        SparseIndex.load(path)


def test_arrays_that_disagree_are_refused_before_the_big_ones_are_read(tmp_path: Path) -> None:
    members = good_members(tmp_path)
    members["meta.npy"] = meta_bytes(["a", "b", "c"])
    with pytest.raises(IndexFormatError, match="doc_indptr has 3 entries for 3 ids"):
        SparseIndex.load(write_zip(tmp_path / "ids.npz", members))
    members = good_members(tmp_path)
    members["doc_values.npy"] = array_bytes(np.ones(3, np.float32))
    with pytest.raises(IndexFormatError, match="doc_indices has 4 entries but doc_values 3"):
        SparseIndex.load(write_zip(tmp_path / "nnz.npz", members))


def test_postings_over_fewer_terms_than_the_rows_use_are_refused(tmp_path: Path) -> None:
    """Documents use vocabulary ids 1, 3 and 7; postings whose pointers end at id 3 (but hold every entry)."""
    members = good_members(tmp_path)
    members["imp_indptr.npy"] = array_bytes(np.array([0, 0, 1, 1, 4], np.int64))
    path = write_zip(tmp_path / "short.npz", members)
    with pytest.raises(IndexFormatError, match="the impact postings do not hold the documents' entries"):
        SparseIndex.load(path)


def test_a_zip_directory_with_too_many_members_is_refused(tmp_path: Path) -> None:
    members = good_members(tmp_path)
    members.update({f"junk{i}": b"" for i in range(1100)})
    with pytest.raises(IndexFormatError, match=f"the zip directory declares {len(members)} members"):
        SparseIndex.load(write_zip(tmp_path / "many.npz", members))


def test_every_truncation_and_byte_flip_is_an_index_format_error_or_a_good_load(tmp_path: Path) -> None:
    index = small_index(ModelIdentity("m", 50, "ab12"))
    good = tmp_path / "good.npz"
    index.save(good, payload={"docs": ["x", "y"]})
    data = good.read_bytes()
    expected = index.search(SparseEmbedding.from_dict({7: 1.0}))
    variants = [data[:cut] for cut in range(0, len(data), 3)]
    variants += [data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :] for at in range(len(data))]
    path = tmp_path / "bad.npz"
    loaded = 0
    for content in variants:
        path.write_bytes(content)
        try:
            got = SparseIndex.load(path)
        except IndexFormatError:
            continue
        loaded += 1  # the flip hit a byte the reader does not use (a timestamp, alignment padding): same index
        assert got.ids == ["a", "b"] and got.search(SparseEmbedding.from_dict({7: 1.0})) == expected
    assert loaded < len(variants) // 3  # each member's local and directory headers pad to a 64-byte boundary


def test_version_1_files_still_load_and_loaded_arrays_are_writable(tmp_path: Path) -> None:
    members = good_members(tmp_path)
    meta = {"format": "splade-onnx-sparse-index", "format_version": 1, "ids": ["a", "b"], "dim": None, "next_id": 0}
    members["meta.npy"] = array_bytes(np.array(json.dumps(meta)))
    members["format_version.npy"] = array_bytes(np.array(1, np.int64))
    loaded = SparseIndex.load(write_zip(tmp_path / "v1.npz", members))
    assert loaded.model is None and loaded.payload is None
    loaded.add([SparseEmbedding.from_dict({7: 3.0})], ids=["c"])
    loaded.delete(["a", "b"])  # compacts the arrays that were read from the file
    assert loaded.search(SparseEmbedding.from_dict({7: 1.0})) == [("c", 3.0)]


# ---------------------------------------------------------------------------- saves


def corpus(n: int, seed: int) -> list[SparseEmbedding]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        idx = rng.choice(1000, size=int(rng.integers(5, 60)), replace=False)
        out.append(SparseEmbedding(values=rng.random(idx.size).astype(np.float32) + 0.01, indices=idx))
    return out


QUERIES = corpus(20, seed=99)


def saved_index(path: Path) -> tuple[SparseIndex, list[list[tuple[str, float]]]]:
    index = SparseIndex(dim=1000)
    index.add(corpus(50, seed=7))
    index.delete(["4"])
    index.save(path, payload={"kind": "old"})
    return index, index.search_batch(QUERIES, 10)


def assert_still(path: Path, hits: list[list[tuple[str, float]]]) -> None:
    loaded = SparseIndex.load(path)
    assert loaded.search_batch(QUERIES, 10) == hits and loaded.payload == {"kind": "old"}


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _save_and_die(path: str) -> None:
    """Child process: start saving a big index over ``path`` and SIGKILL itself inside doc_values."""
    index = SparseIndex()
    index.add(corpus(3000, seed=8))
    from splade_onnx import _npz_write

    real, calls = _npz_write._npy_header, []

    def npy_header(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        if len(calls) == 5:  # format_version, meta, doc_indptr and doc_indices written
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    _npz_write._npy_header = npy_header  # type: ignore[assignment]
    index.save(path)


def test_killed_saves_leave_a_temporary_that_the_next_save_sweeps(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    _, hits = saved_index(path)
    seen: set[str] = set()
    for _ in range(3):
        p = multiprocessing.get_context("spawn").Process(target=_save_and_die, args=(str(path),))
        p.start()
        p.join(120)
        assert p.exitcode == -signal.SIGKILL
        left = temporaries(tmp_path)
        # Each killed save swept the one before it (its lock was free) and left its own, mid-write.
        assert len(left) == 1 and left[0].startswith(".index.npz.") and left[0] not in seen
        assert (tmp_path / left[0]).stat().st_size > path.stat().st_size
        seen.add(left[0])
        assert_still(path, hits)
    new = SparseIndex()
    new.add(corpus(10, seed=3))
    new.save(path)
    assert temporaries(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]
    assert SparseIndex.load(path).search_batch(QUERIES, 10) == new.search_batch(QUERIES, 10)


HOLD_LOCK = """
import fcntl, sys
f = open(sys.argv[1], "wb")
f.write(b"a live writer's partial data")
f.flush()
fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_live_writers_temporary_is_not_swept(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    _, hits = saved_index(path)
    live, stale = tmp_path / ".index.npz.live1234.tmp", tmp_path / ".index.npz.dead5678.tmp"
    stale.write_bytes(b"left by a killed save")
    other = tmp_path / ".other.npz.dead0000.tmp"  # another target's temporary: not this save's to sweep
    other.write_bytes(b"x")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(live)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        saved_index(path)
        assert temporaries(tmp_path) == sorted([live.name, other.name])
        assert live.read_bytes() == b"a live writer's partial data"
    finally:
        holder.communicate("", timeout=60)
    saved_index(path)  # the writer is gone: its lock is free
    assert temporaries(tmp_path) == [other.name]
    assert_still(path, hits)


def _fail_in_savez(exc: BaseException) -> Callable[..., None]:
    real = index_file.write_npz

    def savez(f: Any, arrays: Any) -> None:
        real(f, {k: v for k, v in arrays.items() if k != "doc_values"})  # bytes written, then it fails
        raise exc

    return savez


@pytest.mark.parametrize("step", ["savez", "interrupt", "fsync", "chmod", "rename"])
def test_a_failed_save_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    path = tmp_path / "index.npz"
    _, hits = saved_index(path)
    exc: BaseException = OSError(28, "No space left on device")
    if step == "savez":
        monkeypatch.setattr(index_file, "write_npz", _fail_in_savez(exc))
    elif step == "interrupt":
        exc = KeyboardInterrupt()
        monkeypatch.setattr(index_file, "write_npz", _fail_in_savez(exc))
    else:
        name = {"fsync": "fsync", "chmod": "chmod", "rename": "replace"}[step]

        def fail(*args: Any, **kwargs: Any) -> None:
            raise exc

        monkeypatch.setattr(os, name, fail)
    new = SparseIndex()
    new.add(corpus(80, seed=11))
    with pytest.raises(type(exc)):
        new.save(path, payload={"kind": "new"})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]
    assert_still(path, hits)


def test_concurrent_saves_of_one_target(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    _, hits = saved_index(path)
    errors: list[BaseException] = []

    def saver() -> None:
        index = SparseIndex.load(path)  # one index per thread: a SparseIndex is not shared while it saves
        try:
            for _ in range(15):
                index.save(path, payload={"kind": "old"})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=saver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and temporaries(tmp_path) == []
    assert_still(path, hits)


#: Files that are well-formed zips of well-formed arrays (their CRC-32s right) whose contents the verifying
#: pass refuses: each replaces one array of the good file; the message its load must give.
BAD_CONTENTS = {
    "a row whose ids fall": ({"doc_indices": np.array([7, 1, 3, 7], np.uint16)}, "doc_indices not strictly"),
    "a negative id": ({"doc_indices": np.array([1, 7, -1, 7], np.int32)}, "doc_indices out of range"),
    "a weight that is not a number": ({"doc_values": np.array([1, np.nan, 0.5, 1], np.float32)}, "doc_values not"),
    "a posting of a negative document": ({"imp_docs": np.array([0, 1, 0, -1], np.int32)}, "imp_docs out of range"),
    "a posting past the last document": ({"imp_docs": np.array([0, 1, 2, 1], np.int32)}, "imp_docs out of range"),
    "a term whose weights rise": ({"imp_weights": np.array([1, 0.5, 1, 2], np.float32)}, "not in decreasing order"),
    "an infinite impact": ({"imp_weights": np.array([1, 0.5, np.inf, 1], np.float32)}, "imp_weights not finite"),
    "a zero impact in a positive file": ({"imp_weights": np.array([1, 0.5, 2, 0], np.float32)}, "impacts_positive"),
    "postings moved to another term": (
        {"imp_indptr": np.array([0, 0, 2, 2, 2, 2, 2, 2, 4], np.int64)},
        "the impact postings do not hold the documents' entries",
    ),
}


@pytest.mark.parametrize("step", [1, 2, 3])
@pytest.mark.parametrize("case", sorted(BAD_CONTENTS))
def test_the_verifying_pass_refuses_bad_contents_wherever_its_steps_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, step: int
) -> None:
    """The pass runs in steps side by side (a row or a term may straddle two of them): with steps of 1, 2 and 3
    entries, the good file loads and searches as before, and each bad content is refused, named."""
    from splade_onnx import _index_mapped

    monkeypatch.setattr(_index_mapped, "_CHECK_ENTRIES", step)
    monkeypatch.setattr(_index_mapped, "_COUNT_ENTRIES", step)
    monkeypatch.setattr(_index_mapped, "_CRC_BYTES", 7 * step)
    good = SparseIndex.load(write_zip(tmp_path / "good.npz", good_members(tmp_path)))
    assert good.search(SparseEmbedding.from_dict({7: 1.0, 3: 1.0})) == [("a", 2.0), ("b", 1.5)]
    replaced, message = BAD_CONTENTS[case]
    members = good_members(tmp_path)
    members |= {f"{name}.npy": array_bytes(array) for name, array in replaced.items()}
    path = write_zip(tmp_path / "bad.npz", members)
    with pytest.raises(IndexFormatError, match=message):
        SparseIndex.load(path)
    assert len(SparseIndex.load(path, verify=False)) == 2  # the structure alone allows it


def test_a_checksum_is_checked_in_steps_and_combined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from splade_onnx import _index_mapped

    monkeypatch.setattr(_index_mapped, "_CRC_BYTES", 4099)
    path = tmp_path / "index.npz"
    index = SparseIndex()
    index.add([SparseEmbedding(values=np.full(20_000, 0.5), indices=np.arange(20_000) * 3)], ids=["a"])
    index.save(path)  # members of about 80,000 bytes: zipfile's reads of their headers stop well before the end
    assert SparseIndex.load(path).ids == ["a"]  # the steps' CRC-32s combine to each member's
    flip_near_the_end(path, "doc_values.npy")  # a byte in the last step of the member's bytes
    with pytest.raises(IndexFormatError, match="doc_values: bad CRC-32"):
        SparseIndex.load(path)


def flip_near_the_end(path: Path, member: str) -> None:
    """Flip a bit of the third-last byte of ``member``'s stored bytes, leaving the zip directory as it was."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len + info.file_size - 3] ^= 0x40  # local header: its own extra
    path.write_bytes(bytes(data))


def test_a_bad_header_is_named_while_the_checksums_run_and_no_thread_outlives_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checksums of the mapped members start before the header is parsed: a file whose header and members
    are both bad is refused for its header, as when nothing ran beside it, and whether a load raised or not,
    the threads of its verifying pass are gone when it returns."""
    from splade_onnx import _index_mapped

    monkeypatch.setattr(_index_mapped, "_CRC_BYTES", 4099)  # many steps: some still queued when the header fails
    index = SparseIndex()
    index.add([SparseEmbedding(values=np.full(20_000, 0.5), indices=np.arange(20_000) * 3)] * 2, ids=["a", "b"])
    index.save(tmp_path / "good.npz")  # members past zipfile's reads of their headers (see above)
    members = members_of(tmp_path / "good.npz")
    members["meta.npy"] = meta_bytes(["a", "a"], impacts_positive=True)
    flip_near_the_end(write_zip(tmp_path / "both.npz", members), "imp_weights.npy")
    members["meta.npy"] = meta_bytes(["a", "b"], impacts_positive=True)
    flip_near_the_end(write_zip(tmp_path / "members.npz", members), "imp_weights.npy")
    before = set(threading.enumerate())
    with pytest.raises(IndexFormatError, match="duplicate ids"):
        SparseIndex.load(tmp_path / "both.npz")
    assert set(threading.enumerate()) <= before
    with pytest.raises(IndexFormatError, match="imp_weights: bad CRC-32"):
        SparseIndex.load(tmp_path / "members.npz")
    assert SparseIndex.load(tmp_path / "members.npz", verify=False).ids == ["a", "b"]
    assert set(threading.enumerate()) <= before


@pytest.mark.parametrize("verify", [True, False])
def test_a_file_renamed_over_the_name_while_it_loads_mixes_nothing_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verify: bool
) -> None:
    """Every member is mapped through the file that was opened, not its name (another save may rename a new
    file over it meanwhile), and the stamp the index keeps is that file's."""
    path, newer = tmp_path / "a.npz", tmp_path / "b.npz"
    first = SparseIndex()
    first.add([SparseEmbedding.from_dict({1: 1.0, 7: 2.0}), SparseEmbedding.from_dict({7: 3.0})], ids=["a", "b"])
    first.save(path)
    opened = os.stat(path)
    second = SparseIndex()
    second.add([SparseEmbedding.from_dict({2: 5.0, 3: 1.0, 9: 4.0})] * 3, ids=["x", "y", "z"])
    second.save(newer)
    real = index_file.mapped

    def renamed_first(*args: Any) -> Any:
        if newer.exists():
            newer.replace(path)
        return real(*args)

    monkeypatch.setattr(index_file, "mapped", renamed_first)
    data = index_file.read_index(str(path), verify=verify)
    assert not newer.exists() and os.stat(path).st_ino != opened.st_ino  # renamed over it during the load
    assert data.ids == ["a", "b"] and data.indices.tolist() == [1, 7, 7] and data.values.tolist() == [1.0, 2.0, 3.0]
    assert data.stamp == (opened.st_size, opened.st_mtime_ns, opened.st_ino)
