"""Atomic writes and checked reads (gradmatch.io)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gradmatch import io  # noqa: E402


def frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "seed": np.arange(5, dtype=np.int64),
            "lambda_hat": rng.standard_normal(5),
            "preset": ["smoke"] * 5,
        }
    )


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out" / "table.parquet"
    with pytest.raises(RuntimeError, match="boom"):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half a table")
            assert tmp.parent == target.parent and tmp.name.startswith(".table.parquet.")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_a_failed_rewrite_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "table.parquet"
    io.write_parquet(frame(0), target)
    before = target.read_bytes()

    def broken(self, path, *args, **kwargs):  # dies after writing part of the file
        with open(path, "wb") as handle:
            handle.write(b"PAR1 truncated")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        io.write_parquet(frame(1), target)
    assert target.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["table.parquet"]


def test_equal_frames_give_byte_identical_parquet(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    io.write_parquet(frame(3), first)
    io.write_parquet(frame(3).copy(), second)
    assert first.read_bytes() == second.read_bytes()
    io.write_parquet(frame(4), second)
    assert first.read_bytes() != second.read_bytes()


def test_index_is_dropped(tmp_path):
    target = tmp_path / "t.parquet"
    io.write_parquet(frame().set_index("seed", drop=False).iloc[::-1], target)
    back = pd.read_parquet(target)
    assert list(back.columns) == ["seed", "lambda_hat", "preset"]
    assert list(back.index) == list(range(5)) and list(back["seed"]) == [4, 3, 2, 1, 0]


def test_write_parquet_rejects_non_frames(tmp_path):
    with pytest.raises(TypeError, match="needs a pandas DataFrame, got dict"):
        io.write_parquet({"a": [1]}, tmp_path / "t.parquet")
    assert list(tmp_path.iterdir()) == []


def test_read_parquet_names_the_file_and_the_fix(tmp_path):
    missing = tmp_path / "nope.parquet"
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet: no such parquet file.*snakemake"):
        io.read_parquet(missing)
    empty = tmp_path / "empty.parquet"
    io.write_parquet(frame().iloc[:0], empty)
    with pytest.raises(ValueError, match=r"empty\.parquet: the table is empty"):
        io.read_parquet(empty)
    full = tmp_path / "full.parquet"
    io.write_parquet(frame(), full)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['lambda_true'\].*--forcerun"):
        io.read_parquet(full, columns=["seed", "lambda_true"])
    assert len(io.read_parquet(full, columns=["seed"])) == 5


def test_save_figure_is_atomic_and_reproducible(tmp_path):
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    io.save_figure(figure, first)
    io.save_figure(figure, second)
    io.save_figure(figure, tmp_path / "a.png", dpi=50)
    assert first.read_bytes() == second.read_bytes()
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="needs a suffix such as .pdf"):
        io.save_figure(figure, tmp_path / "nosuffix")
    plt.close(figure)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.pdf", "a.png", "b.pdf"]


def test_every_table_carries_a_provenance_record_in_its_metadata(tmp_path):
    from gradmatch import provenance

    source = frame()
    source.attrs = {"scratch": "not written"}
    io.write_parquet(source, tmp_path / "default.parquet")
    assert source.attrs == {"scratch": "not written"}  # the caller's frame is left as it was
    read = pd.read_parquet(tmp_path / "default.parquet")
    assert set(read.attrs) == {"gradmatch"}
    assert read.attrs["gradmatch"] == provenance.record()  # this process, from no settings
    assert read.attrs["gradmatch"]["config_hash"] is None
    given = {"commit": "c" * 40, "config_hash": "h" * 64, "device": "NVIDIA H200"}
    io.write_parquet(frame(), tmp_path / "given.parquet", provenance=given)
    assert io.read_provenance(tmp_path / "given.parquet") == given
    assert pd.read_parquet(tmp_path / "given.parquet").attrs["gradmatch"] == given


def test_read_provenance_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.parquet: no such parquet file"):
        io.read_provenance(tmp_path / "nope.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="bad.parquet: not a readable parquet table"):
        io.read_provenance(tmp_path / "bad.parquet")
