"""File hashes remembered across processes (splade_onnx._digest), and sessions opened on first use: what a
cached model's cold start no longer pays for."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from splade_onnx import SpladeEncoder, _digest
from splade_onnx._session import PrunedBackend

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file actually read to be hashed; the in-process memory starts empty (as in a new process)."""
    seen: list[str] = []
    real = _digest.sha256_file

    def spy(path: Path | str) -> str:
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(_digest, "sha256_file", spy)
    monkeypatch.setattr(_digest, "_known", {})
    return seen


def test_a_hash_is_read_once_then_remembered_by_the_memo(tmp_path: Path, reads: list[str]) -> None:
    f, memo = tmp_path / "weights.bin", tmp_path / "cache" / _digest.MEMO_NAME
    f.write_bytes(b"\x01" * 1000)
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    assert _digest.file_sha256(f, memo) == want and reads == [str(f)]
    _digest._known.clear()  # a new process: only the memo remembers
    assert _digest.file_sha256(f, memo) == want and len(reads) == 1
    entry = json.loads(memo.read_text())["files"][os.path.realpath(f)]
    assert entry[0] == 1000 and entry[3] == want


@pytest.mark.parametrize("change", ["rewrite", "truncate", "replace"])
def test_a_changed_file_is_read_again(tmp_path: Path, reads: list[str], change: str) -> None:
    f, memo = tmp_path / "weights.bin", tmp_path / _digest.MEMO_NAME
    f.write_bytes(b"\x01" * 1000)
    _digest.file_sha256(f, memo)
    st = f.stat()
    if change == "rewrite":  # same size, new contents, the old mtime put back: the inode alone cannot tell...
        f.write_bytes(b"\x02" * 1000)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # ... so the rewrite must move the mtime
    elif change == "truncate":
        f.write_bytes(b"\x01" * 10)
    else:
        (tmp_path / "new.bin").write_bytes(b"\x03" * 1000)
        os.replace(tmp_path / "new.bin", f)
    _digest._known.clear()
    assert _digest.file_sha256(f, memo) == hashlib.sha256(f.read_bytes()).hexdigest()
    assert len(reads) == 2


@pytest.mark.parametrize(
    "memo_text",
    ["", "not json", "[]", '{"files": []}', '{"files": {"x": [1, 2, 3, "short"]}}', '{"files": {"x": [true, 2, 3]}}'],
)
def test_a_malformed_memo_is_ignored_and_rewritten(tmp_path: Path, reads: list[str], memo_text: str) -> None:
    f, memo = tmp_path / "weights.bin", tmp_path / _digest.MEMO_NAME
    f.write_bytes(b"abc")
    memo.write_text(memo_text)
    assert _digest.file_sha256(f, memo) == hashlib.sha256(b"abc").hexdigest()
    assert os.path.realpath(f) in json.loads(memo.read_text())["files"]


def test_a_forged_memo_entry_for_another_file_version_is_not_used(tmp_path: Path, reads: list[str]) -> None:
    f, memo = tmp_path / "weights.bin", tmp_path / _digest.MEMO_NAME
    f.write_bytes(b"abc")
    st = f.stat()
    stale = [st.st_size, st.st_mtime_ns - 10**9, st.st_ino, "0" * 64]
    memo.write_text(json.dumps({"format": 1, "files": {os.path.realpath(f): stale}}))
    assert _digest.file_sha256(f, memo) == hashlib.sha256(b"abc").hexdigest()
    assert reads == [str(os.path.realpath(f))]


def test_the_memo_keeps_at_most_its_limit(tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_digest, "MEMO_ENTRIES", 3)
    memo = tmp_path / _digest.MEMO_NAME
    for i in range(5):
        (tmp_path / f"{i}.bin").write_bytes(bytes([i]))
        _digest.file_sha256(tmp_path / f"{i}.bin", memo)
    kept = json.loads(memo.read_text())["files"]
    assert sorted(Path(k).name for k in kept) == ["2.bin", "3.bin", "4.bin"]  # the newest


def test_loading_opens_no_session_and_a_query_only_the_latency_graph(tiny: SpladeEncoder, cache_dir: Path) -> None:
    enc = SpladeEncoder.from_pretrained("rasyosef/splade-tiny", cache_dir=cache_dir)
    doc = enc.loaded.document
    assert enc.loaded.query_mode == "same"
    assert not doc.main.opened and doc.fast is not None and not doc.fast.opened
    enc.encode_queries(["what is the boundary layer"])
    assert doc.fast.opened and not doc.main.opened
    enc.encode_documents(["a longer document " * 40] * 8)
    assert doc.main.opened and isinstance(doc.backend, PrunedBackend)


def test_a_new_process_loading_a_cached_model_reads_no_weights(tiny: SpladeEncoder, cache_dir: Path) -> None:
    """The second process finds every source file and cached graph in the memo: nothing is read to be hashed."""
    code = (
        "import sys\n"
        "from splade_onnx import SpladeEncoder, _digest\n"
        "reads = []\n"
        "real = _digest.sha256_file\n"
        "_digest.sha256_file = lambda p: reads.append(str(p)) or real(p)\n"
        "SpladeEncoder.from_pretrained('rasyosef/splade-tiny', cache_dir=sys.argv[1]).encode_queries(['moon'])\n"
        "print(len(reads))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    counts = [
        int(
            subprocess.run(
                [sys.executable, "-c", code, str(cache_dir)], env=env, check=True, capture_output=True, text=True
            ).stdout.split()[-1]
        )
        for _ in range(2)
    ]
    assert counts[1] == 0


def test_a_hash_for_a_file_version_is_none_once_the_name_holds_another(tmp_path: Path) -> None:
    path, other = tmp_path / "f", tmp_path / "g"
    path.write_bytes(b"first")
    stamp = _digest.FileStamp.of(os.stat(path))
    assert _digest.sha256_if_unchanged(path, stamp) == _digest.sha256_file(path)
    other.write_bytes(b"second")
    other.replace(path)  # another file under the name
    assert _digest.sha256_if_unchanged(path, stamp) is None
    path.unlink()
    assert _digest.sha256_if_unchanged(path, stamp) is None
