"""MNIST IDX reading and the checksummed download, on small files written here (no network)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
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
