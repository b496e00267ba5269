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


def test_after_first_view_builds_at_once_outside_a_server():
    """Notebooks and static exports get the whole view: nothing waits for a page load that never comes."""
    import panel as pn

    from latentatlas.viz.serving import after_first_view

    view = pn.pane.Markdown("rest")
    calls = []
    assert after_first_view(lambda: calls.append(1) or view) is view
    assert calls == [1]


def test_configure_reuses_sessions_warm_only_with_one_process():
    """With several processes a page's websocket may reach another one: a warm build there would be wasted."""
    import panel as pn

    from latentatlas.cli.serve import configure

    try:
        configure(num_procs=1)
        assert pn.config.reuse_sessions == "warm"
        configure(num_procs=2, num_threads=4)
        assert pn.config.reuse_sessions is True and pn.config.nthreads == 4
    finally:
        configure()
        pn.config.reuse_sessions = False


def test_num_procs_must_be_positive(capsys):
    import pytest

    from latentatlas.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--num-procs", "0"])
    assert exit_info.value.code == 2
    assert "--num-procs" in capsys.readouterr().err
