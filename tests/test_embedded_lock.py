"""One writer per embedded index directory; readers are never blocked; a dead writer leaves no stale lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lsr.backends.embedded import EmbeddedIndex
from lsr.backends.embedded_lock import IndexLockedError
from lsr.sparse import SparseVector

WRITER = textwrap.dedent("""
    import sys, time
    from lsr.backends.embedded import EmbeddedIndex
    from lsr.sparse import SparseVector
    index = EmbeddedIndex.load(sys.argv[1])
    index.index(["w1"], [SparseVector.from_dict({5: 1.0})])
    print("holding", flush=True)
    time.sleep(60)
""")


def test_a_second_writer_is_refused_with_the_holders_pid_and_readers_go_on(tmp_path):
    directory = tmp_path / "idx"
    with EmbeddedIndex(vocab_size=50, directory=directory) as index:
        index.index(["a", "b"], [SparseVector.from_dict({1: 1.0}), SparseVector.from_dict({2: 2.0})])
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(directory)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"
        reader = EmbeddedIndex.load(directory)  # reading is never blocked
        assert [h.id for h in reader.search(SparseVector.from_dict({2: 1.0}), k=1)] == ["b"]
        with pytest.raises(IndexLockedError, match=f"locked by PID {writer.pid}"):
            reader.index(["c"], [SparseVector.from_dict({3: 1.0})])
        assert reader.count() == 2 and "c" not in reader  # nothing was accepted
        with pytest.raises(IndexLockedError):
            reader.delete(["a"])
        with pytest.raises(IndexLockedError):
            reader.save()
        assert reader.count() == 2
    finally:
        writer.kill()
        writer.wait()
    again = EmbeddedIndex.load(directory)  # the dead writer's lock went with its process
    again.index(["c"], [SparseVector.from_dict({3: 1.0})])
    again.commit()
    again.close()
    assert EmbeddedIndex.load(directory).count() == 3


def test_one_process_two_writers_and_release_on_close(tmp_path):
    directory = tmp_path / "idx"
    first = EmbeddedIndex(vocab_size=50, directory=directory)
    first.index(["a"], [SparseVector.from_dict({1: 1.0})])
    first.commit()
    second = EmbeddedIndex.load(directory)
    with pytest.raises(IndexLockedError, match="another writer"):
        second.index(["b"], [SparseVector.from_dict({2: 1.0})])
    first.close()
    second.index(["b"], [SparseVector.from_dict({2: 1.0})])
    second.save(tmp_path / "copy")  # a save elsewhere locks that directory only while writing
    assert EmbeddedIndex.load(tmp_path / "copy").count() == 2
    second.close()
