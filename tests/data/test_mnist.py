"""MNIST IDX reading and the checksummed download, on small files written here (no network)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from gradmatch import config as config_lib
from gradmatch.data import images, mnist


def idx_bytes(values: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in values.shape)
    return header + values.astype(np.uint8).tobytes()


def write_split(root: Path, split: str, n: int, compress: bool, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    image_stem, label_stem = mnist.FILES[split]
    for stem, values, magic in (
        (image_stem, pixels, mnist.IMAGE_MAGIC),
        (label_stem, labels, mnist.LABEL_MAGIC),
    ):
        data = idx_bytes(values, magic)
        if compress:
            (root / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (root / stem).write_bytes(data)
    return pixels, labels


@pytest.mark.parametrize("compress", [True, False])
def test_load_images_reads_idx_and_scales_to_unit_interval(tmp_path, compress):
    pixels, labels = write_split(tmp_path, "test", n=7, compress=compress)
    X, y = images.load_images("mnist", "test", root=tmp_path)
    assert X.shape == (7, 784) and str(X.dtype) == "torch.float32"
    assert str(y.dtype) == "torch.int64"
    np.testing.assert_allclose(X.numpy(), pixels.reshape(7, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y.numpy(), labels)
    assert float(X.min()) >= 0.0 and float(X.max()) <= 1.0


def test_wrong_magic_number_names_file(tmp_path):
    write_split(tmp_path, "train", n=3, compress=False)
    label_path = tmp_path / "train-labels-idx1-ubyte"
    label_path.write_bytes(idx_bytes(np.zeros(3), mnist.IMAGE_MAGIC))
    with pytest.raises(mnist.DataError, match=r"train-labels-idx1-ubyte: IDX magic number 2051"):
        images.load_images("mnist", "train", root=tmp_path)


def test_truncated_idx_names_file_and_sizes(tmp_path):
    write_split(tmp_path, "train", n=3, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(mnist.DataError, match=r"shape \(3, 28, 28\) \(2352 bytes.*holds 2342"):
        images.load_images("mnist", "train", root=tmp_path)


def test_corrupt_gzip_names_file(tmp_path):
    write_split(tmp_path, "test", n=3, compress=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(mnist.DataError, match=r"t10k-images-idx3-ubyte.gz: corrupt or truncated"):
        images.load_images("mnist", "test", root=tmp_path)


def test_label_count_mismatch(tmp_path):
    write_split(tmp_path, "test", n=4, compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5), mnist.LABEL_MAGIC))
    with pytest.raises(mnist.DataError, match=r"\(5,\) labels for 4 images"):
        images.load_images("mnist", "test", root=tmp_path)


def test_missing_files_point_to_the_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="gradmatch download-mnist"):
        images.load_images("mnist", "train", root=tmp_path)


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match=r"dataset 'cifar' unknown; choose one of \['digits'"):
        images.load_images("cifar", "train")
    with pytest.raises(ValueError, match=r"split 'val' unknown"):
        images.load_images("digits", "val")


# ---------------------------------------------------------------- download


def make_mirror(folder: Path) -> dict[str, str]:
    """Four small gz files in ``folder``; returns their SHA-256 sums."""
    folder.mkdir()
    sums = {}
    for index, name in enumerate(sorted(mnist.SHA256)):
        data = gzip.compress(f"file {index}".encode(), mtime=0)
        (folder / name).write_bytes(data)
        sums[name] = hashlib.sha256(data).hexdigest()
    return sums


def test_download_from_file_mirror_verifies_and_writes(tmp_path):
    sums = make_mirror(tmp_path / "mirror")
    dest = tmp_path / "raw"
    written = mnist.download_mnist(dest, [(tmp_path / "mirror").as_uri()], sums)
    assert sorted(path.name for path in written) == sorted(mnist.SHA256)
    assert sorted(path.name for path in dest.iterdir()) == sorted(mnist.SHA256)
    assert all(mnist.sha256_of(path) == sums[path.name] for path in written)


def test_checksum_failure_names_file_sums_and_fix_and_writes_nothing(tmp_path):
    sums = make_mirror(tmp_path / "mirror")
    bad = tmp_path / "mirror" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-3])  # truncated on the mirror
    actual = mnist.sha256_of(bad)
    dest = tmp_path / "raw"
    with pytest.raises(mnist.DownloadError) as caught:
        mnist.download_mnist(dest, [(tmp_path / "mirror").as_uri()], sums, report=print)
    message = str(caught.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert sums["t10k-labels-idx1-ubyte.gz"] in message and actual in message
    assert "checksum mismatch" in message
    assert "mnist.mirrors" in message
    assert not (dest / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [path for path in dest.iterdir() if path.name.startswith(".")]  # no temp left


def test_second_mirror_used_when_first_fails(tmp_path):
    sums = make_mirror(tmp_path / "good")
    calls = []

    def fetch(url, target, timeout):
        calls.append(url)
        if url.startswith("https://broken.example"):
            raise OSError("connection refused")
        mnist.fetch_url(url, target, timeout)

    mirrors = ["https://broken.example/mnist/", (tmp_path / "good").as_uri()]
    reports = []
    mnist.download_mnist(tmp_path / "raw", mirrors, sums, fetch=fetch, report=reports.append)
    assert len(reports) == 4 and all("connection refused" in line for line in reports)
    assert len(calls) == 8 and sum(url.startswith("https://broken") for url in calls) == 4
    assert len(list((tmp_path / "raw").iterdir())) == 4


def test_verified_files_are_not_fetched_again(tmp_path):
    sums = make_mirror(tmp_path / "mirror")
    mirrors = [(tmp_path / "mirror").as_uri()]
    mnist.download_mnist(tmp_path / "raw", mirrors, sums)

    def fetch(url, target, timeout):
        raise AssertionError(f"fetched {url} although a verified copy exists")

    assert len(mnist.download_mnist(tmp_path / "raw", mirrors, sums, fetch=fetch)) == 4


def test_published_checksums_are_sha256_hex():
    assert sorted(mnist.SHA256) == sorted(
        f"{stem}.gz" for pair in mnist.FILES.values() for stem in pair
    )
    assert all(len(value) == 64 and int(value, 16) >= 0 for value in mnist.SHA256.values())


@pytest.fixture
def http_404():
    """An http:// mirror on localhost that answers every request with 404 Not Found."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404, "Not Found")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mnist/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def http_silent():
    """An http:// mirror on localhost that accepts the connection and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/mnist/"
    listener.close()


def test_each_failing_mirror_is_reported_and_the_next_tried(tmp_path, http_404, http_silent):
    """Malformed URL, HTTP error, timeout and checksum mismatch: reported, then the next mirror."""
    sums = make_mirror(tmp_path / "good")
    make_mirror(tmp_path / "wrong")  # the same files, but one with other bytes: a mismatch
    (tmp_path / "wrong" / "t10k-images-idx3-ubyte.gz").write_bytes(b"other bytes")
    mirrors = [
        "not a url/",
        http_404,
        http_silent,
        (tmp_path / "wrong").as_uri(),
        (tmp_path / "good").as_uri(),
    ]
    reports = []
    written = mnist.download_mnist(
        tmp_path / "raw", mirrors, sums, timeout=0.2, report=reports.append
    )
    assert sorted(path.name for path in written) == sorted(mnist.SHA256)
    assert all(mnist.sha256_of(path) == sums[path.name] for path in written)
    images_file = [line for line in reports if "t10k-images-idx3-ubyte.gz" in line]
    assert len(images_file) == 4, images_file
    assert "mirror 1/5 failed: not a url/t10k-images-idx3-ubyte.gz: malformed URL" in images_file[0]
    assert "mirror 2/5 failed" in images_file[1] and "HTTP error 404" in images_file[1]
    assert "mirror 3/5 failed" in images_file[2] and "timed out after 0.2 s" in images_file[2]
    assert "mirror 4/5 failed" in images_file[3] and "checksum mismatch" in images_file[3]
    assert all(line.endswith("trying the next mirror") for line in reports)
    # the other three files match on the 'wrong' mirror (same bytes there): 3 failures each
    assert len(reports) == 4 + 3 * 3


def test_when_every_mirror_fails_one_error_lists_each_failure(tmp_path, http_404, capsys):
    mirrors = ["ftp//nowhere/", http_404, (tmp_path / "absent").as_uri()]
    with pytest.raises(mnist.DownloadError) as caught:
        mnist.download_mnist(tmp_path / "raw", mirrors, dict(mnist.SHA256))
    message = str(caught.value)
    first = sorted(mnist.SHA256)[0]
    assert message.startswith(f"{tmp_path / 'raw' / first}: no mirror served")
    assert "ftp//nowhere/" in message and "malformed URL" in message
    assert f"{http_404}{first}: HTTP error 404" in message
    assert "absent" in message and "unreachable" in message
    assert "mnist.mirrors" in message
    lines = capsys.readouterr().err.strip().splitlines()  # the default report: stderr
    assert len(lines) == 3 and lines[-1].endswith("no mirror left")
    assert list((tmp_path / "raw").iterdir()) == []  # nothing half-written


@pytest.mark.parametrize(
    ("index", "mirror", "fragment"),
    [
        (1, "ftp://example.org/mnist/", "has scheme 'ftp'"),
        (0, "example.org/mnist/", "has no scheme"),
        (1, "https:///mnist/", "names no host"),
        (1, "file:", "names no folder"),
    ],
)
def test_download_settings_reject_a_mirror_that_is_not_a_url(index, mirror, fragment):
    mirrors = [mirror, "https://example.org/"] if index == 0 else ["file:///data/", mirror]
    with pytest.raises(config_lib.ConfigError) as caught:
        config_lib.section_settings({"mnist": {"mirrors": mirrors}}, "mnist")
    message = str(caught.value)
    assert message.startswith(f"config key 'mnist.mirrors.{index}':"), message
    assert fragment in message and repr(mirror) in message


def test_download_settings_accept_http_https_and_file_mirrors():
    mirrors = ["http://example.org/a/", "https://example.org/b", "file:///srv/mnist/"]
    settings = config_lib.section_settings({"mnist": {"mirrors": mirrors}}, "mnist")
    assert settings.mirrors == tuple(mirrors)
    assert config_lib.section_settings({}, "mnist").mirrors == mnist.DEFAULT_MIRRORS


# ---------------------------------------------------------------- a folder of one's own (mnist.dir)


def own_folder(root: Path, n: int = 5) -> dict[str, bytes]:
    """The four MNIST files as small plain IDX files under ``root``; their bytes by file stem."""
    root.mkdir(exist_ok=True)
    written = {}
    for split in mnist.FILES:
        write_split(root, split, n=n, compress=False, seed=len(split))
    for stem in mnist.RAW_SHA256:
        written[stem] = (root / stem).read_bytes()
    return written


def sums_of(contents: dict[str, bytes]) -> dict[str, str]:
    return {stem: hashlib.sha256(data).hexdigest() for stem, data in contents.items()}


def rename_dotted_and_regzip(root: Path, contents: dict[str, bytes], gzipped: set[str]) -> None:
    """Rename every file to the dotted naming; gzip again (another tool's level) those named."""
    for stem, data in contents.items():
        (root / stem).unlink()
        dotted = stem.replace("-idx", ".idx")
        if stem in gzipped:
            (root / f"{dotted}.gz").write_bytes(gzip.compress(data, compresslevel=1, mtime=123))
        else:
            (root / dotted).write_bytes(data)


def test_candidate_names_cover_both_namings_with_and_without_gz():
    assert mnist.candidate_names("train-images-idx3-ubyte") == (
        "train-images-idx3-ubyte.gz",
        "train-images-idx3-ubyte",
        "train-images.idx3-ubyte.gz",
        "train-images.idx3-ubyte",
    )


def test_a_folder_of_plain_and_regzipped_dotted_files_verifies_and_loads(tmp_path):
    contents = own_folder(tmp_path / "own")
    rename_dotted_and_regzip(tmp_path / "own", contents, {"train-images-idx3-ubyte"})
    found = mnist.verify_folder(tmp_path / "own", sums_of(contents))
    assert found["train-images-idx3-ubyte"]["path"].endswith("train-images.idx3-ubyte.gz")
    assert found["t10k-labels-idx1-ubyte"]["path"].endswith("t10k-labels.idx1-ubyte")
    assert (
        found["train-images-idx3-ubyte"]["sha256"] == sums_of(contents)["train-images-idx3-ubyte"]
    )
    X, y = images.load_images("mnist", "train", root=tmp_path / "own")
    assert X.shape == (5, 784) and y.shape == (5,)


def test_a_modified_file_is_rejected_naming_it_and_both_sums(tmp_path):
    contents = own_folder(tmp_path / "own")
    sums = sums_of(contents)
    bad = tmp_path / "own" / "t10k-images-idx3-ubyte"
    changed = bytearray(contents["t10k-images-idx3-ubyte"])
    changed[-1] ^= 0xFF  # one pixel
    bad.write_bytes(bytes(changed))
    with pytest.raises(mnist.ChecksumError) as caught:
        mnist.verify_folder(tmp_path / "own", sums)
    message = str(caught.value)
    assert f"{bad}: sha256 {hashlib.sha256(bytes(changed)).hexdigest()}" in message
    assert f"expected {sums['t10k-images-idx3-ubyte']}" in message
    assert "train-images" not in message  # only the bad file is named
    assert "mnist.dir" in message


def test_a_missing_file_names_every_name_looked_for(tmp_path):
    own_folder(tmp_path / "own")
    (tmp_path / "own" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as caught:
        mnist.verify_folder(tmp_path / "own")
    message = str(caught.value)
    assert "train-labels-idx1-ubyte.gz, train-labels-idx1-ubyte, train-labels.idx1-ubyte.gz" in (
        message
    )
    assert "mnist.dir" in message


def test_the_stamp_verifies_once_and_again_after_a_change(tmp_path, monkeypatch):
    contents = own_folder(tmp_path / "own")
    sums = sums_of(contents)
    stamp = tmp_path / "stamp" / "verified.json"
    assert mnist.write_stamp(tmp_path / "own", stamp, sums) is True
    assert mnist.stamp_is_current(tmp_path / "own", stamp, sums)
    read = []
    real_read = mnist._read_bytes
    monkeypatch.setattr(mnist, "_read_bytes", lambda path: read.append(path) or real_read(path))
    assert mnist.write_stamp(tmp_path / "own", stamp, sums) is False
    assert read == []  # the second call read no file
    assert not mnist.stamp_is_current(tmp_path / "own", stamp)  # other sums: not this stamp
    target = tmp_path / "own" / "train-labels-idx1-ubyte"
    target.write_bytes(contents["train-labels-idx1-ubyte"])  # same bytes, a new mtime
    os.utime(target, ns=(0, 10**9))
    assert not mnist.stamp_is_current(tmp_path / "own", stamp, sums)
    assert mnist.write_stamp(tmp_path / "own", stamp, sums) is True
    assert len(read) == 4
    assert [path.name for path in stamp.parent.iterdir()] == ["verified.json"]  # no temp left


def test_verify_mnist_command_writes_the_stamp_or_names_the_bad_file(tmp_path, monkeypatch):
    from gradmatch.cli import main

    contents = own_folder(tmp_path / "own")
    monkeypatch.setattr(mnist, "RAW_SHA256", sums_of(contents))
    stamp = tmp_path / "verified.json"
    assert main(["verify-mnist", "--dir", str(tmp_path / "own"), "--stamp", str(stamp)]) == 0
    record = json.loads(stamp.read_text())
    assert record["dir"] == str((tmp_path / "own").absolute())
    assert (
        record["files"]["t10k-labels-idx1-ubyte"]["sha256"]
        == sums_of(contents)["t10k-labels-idx1-ubyte"]
    )
    monkeypatch.setattr(
        mnist, "RAW_SHA256", {**sums_of(contents), "train-labels-idx1-ubyte": "0" * 64}
    )
    stamp.unlink()
    assert main(["verify-mnist", "--dir", str(tmp_path / "own"), "--stamp", str(stamp)]) == 1
    assert not stamp.exists()


def test_the_decompressed_sums_and_sizes_are_those_of_the_published_files():
    """Pinned: the SHA-256 of the four decompressed files as distributed (several public
    projects list these beside the .gz sums of mnist.SHA256), and the IDX sizes they imply."""
    published = """
        ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
        65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
        0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
        ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
    """
    pairs = (line.split() for line in published.strip().splitlines())
    assert mnist.RAW_SHA256 == {name: digest for digest, name in pairs}
    assert sorted(f"{stem}.gz" for stem in mnist.RAW_SHA256) == sorted(mnist.SHA256)
    assert mnist.RAW_BYTES == {
        "train-images-idx3-ubyte": 47_040_016,
        "train-labels-idx1-ubyte": 60_008,
        "t10k-images-idx3-ubyte": 7_840_016,
        "t10k-labels-idx1-ubyte": 10_008,
    }


def test_the_mnist_dir_key_is_validated_and_described_in_the_schema():
    settings = config_lib.section_settings({"mnist": {"dir": "/shared/datasets/mnist"}}, "mnist")
    assert settings.dir == "/shared/datasets/mnist"
    assert config_lib.section_settings({}, "mnist").dir is None
    with pytest.raises(config_lib.ConfigError, match="mnist.dir"):
        config_lib.section_settings({"mnist": {"dir": ""}}, "mnist")
    described = config_lib.json_schema()["properties"]["mnist"]["properties"]["dir"]
    assert "never downloads" in described["description"]
