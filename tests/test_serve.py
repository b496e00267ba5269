"""``latentatlas serve``: result files read once per server process and shared by its sessions."""

from __future__ import annotations

import os

from latentatlas.cli.serve import shared


def test_shared_reads_a_file_once_until_it_changes(tmp_path):
    path = tmp_path / "result.txt"
    path.write_text("first")
    reads = []

    def loader(p):
        reads.append(p)
        return p.read_text()

    assert shared(path, loader) == "first"
    assert shared(tmp_path / ".." / tmp_path.name / "result.txt", loader) == "first"  # same file, other spelling
    assert len(reads) == 1
    path.write_text("second, longer")
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000))
    assert shared(path, loader) == "second, longer"
    assert len(reads) == 2
