import pytest

from medseg.atomic import atomic_dir, atomic_file


def test_atomic_dir_replaces_previous_result(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "a").write_text("1")
    with atomic_dir(final) as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_failure_leaves_nothing_and_keeps_old(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "partial").write_text("x")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(final) as tmp:
        (tmp / "good").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(final):
            raise RuntimeError("killed")
    assert [p.name for p in final.iterdir()] == ["good"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_file(tmp_path):
    final = tmp_path / "f.txt"
    with atomic_file(final) as tmp:
        tmp.write_text("done")
    assert final.read_text() == "done"
    with pytest.raises(ValueError):
        with atomic_file(final) as tmp:
            tmp.write_text("half")
            raise ValueError
    assert final.read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_outputs_get_ordinary_permissions_not_private_temporary_ones(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("1")
        with atomic_file(tmp_path / "f") as tmp:
            tmp.write_text("1")
    finally:
        os.umask(umask)
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_a_file_replaced_by_its_writer_gets_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "f") as tmp:
            tmp.unlink()
            fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)  # as safetensors' writer does
            os.close(fd)
    finally:
        os.umask(umask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_a_folder_in_place_of_the_file_is_a_clear_error(tmp_path):
    from medseg.errors import MedsegError

    (tmp_path / "out").mkdir()
    with pytest.raises(MedsegError, match="is a folder; give the path of the file to write"):
        with atomic_file(tmp_path / "out"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_checks_refuse_paths_that_cannot_be_written(tmp_path):
    from medseg.atomic import check_dir_target, check_file_target
    from medseg.errors import MedsegError

    (tmp_path / "a_file").write_text("mine")
    check_file_target(tmp_path / "new" / "deeper" / "out.parquet")  # missing parents are created later
    check_dir_target(tmp_path / "new" / "folder")
    with pytest.raises(MedsegError, match=r"a_file is a file; give a folder"):
        check_dir_target(tmp_path / "a_file")
    with pytest.raises(MedsegError, match=r"cannot create .*a_file/sub: .*a_file is a file, not a folder"):
        check_file_target(tmp_path / "a_file" / "sub" / "out.parquet")
    # /proc refuses new files even to root, as a read-only mount would.
    with pytest.raises(MedsegError, match=r"cannot write in /proc \(the nearest existing folder of /proc/x\)"):
        check_file_target("/proc/x/out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
    assert (tmp_path / "a_file").read_text() == "mine"


@pytest.mark.skipif(__import__("os").geteuid() == 0, reason="root writes into read-only folders")
def test_output_checks_refuse_a_read_only_folder(tmp_path):
    from medseg.atomic import check_file_target
    from medseg.errors import MedsegError

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(MedsegError, match=r"cannot write in .*locked: Permission denied"):
        check_file_target(locked / "out.parquet")
