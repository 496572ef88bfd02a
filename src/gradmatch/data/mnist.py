"""MNIST: read the four standard IDX files, and download them from mirrors with SHA-256 checks.

IDX format (LeCun, Cortes and Burges): a big-endian header, then the values in C order.
Bytes 0-1 are zero, byte 2 the value type (0x08 = unsigned byte), byte 3 the number of
dimensions d, then d 32-bit sizes. Images have d = 3, (n, 28, 28), magic number 0x00000803 =
2051; labels d = 1, (n,), magic 0x00000801 = 2049. Files may be gzipped (``*.gz``) or plain.

Checksums: :data:`SHA256`, the SHA-256 sums of the gzipped files as distributed (60,000 train
and 10,000 test images). The same four sums are published with the ``mnist`` package of
guildai/packages (``mnist/PACKAGE``) and in ankane/torchvision-ruby
(``lib/torchvision/datasets/mnist.rb``), which fetch from the mirrors listed in
``DEFAULT_MIRRORS``. :data:`RAW_SHA256`, the sums of the four *decompressed* files, checks a
folder a site already keeps (``mnist.dir``: plain IDX files, or gzipped again by any tool,
under either naming of :func:`candidate_names`); several public projects list the same four
values beside the ``.gz`` sums above and beside the decompressed sizes of :data:`RAW_BYTES`
(16 + 784 n bytes of images, 8 + n of labels).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, Field, model_validator

from gradmatch.io import atomic_path
from gradmatch.settings import Settings

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10

# split -> (images file, labels file), the names as distributed
FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    ),
}

# SHA-256 and size in bytes of the decompressed IDX files (what the gzipped files above unpack to)
RAW_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
RAW_BYTES: dict[str, int] = {
    "train-images-idx3-ubyte": 16 + 60_000 * 784,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * 784,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}

DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's first mirror
    "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow's mirror
    "http://yann.lecun.com/exdb/mnist/",  # the original page
)


MIRROR_SCHEMES = ("http", "https", "file")


def check_mirror(url: str) -> str:
    """``url`` when it is an http(s) URL with a host or a file URL with a path; else ValueError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in MIRROR_SCHEMES:
        raise ValueError(
            f"a mirror must be an http://, https:// or file:// URL folder; {url!r} has "
            f"{'scheme ' + repr(parts.scheme) if parts.scheme else 'no scheme'}"
        )
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise ValueError(f"the {parts.scheme} mirror {url!r} names no host")
    if parts.scheme == "file" and not parts.path:
        raise ValueError(f"the file mirror {url!r} names no folder (write file:///absolute/path)")
    return url


class DownloadSettings(Settings):
    """The config section ``mnist`` (used with dataset: mnist): a folder the site already keeps
    MNIST in (``dir``), or else where ``gradmatch download-mnist`` fetches the four gzipped IDX
    files from and the SHA-256 sums they must have."""

    mirrors: tuple[Annotated[str, AfterValidator(check_mirror)], ...] = Field(
        DEFAULT_MIRRORS,
        min_length=1,
        description="URL folders tried in order, each holding the four .gz files "
        "(http, https or file://)",
    )
    checksums: dict[str, Annotated[str, Field(pattern="^[0-9a-f]{64}$")]] = Field(
        default_factory=lambda: dict(SHA256),
        description="SHA-256 (64 hex digits) of each of the four .gz files, by file name",
    )
    timeout_s: float = Field(60.0, gt=0, description="seconds to wait for a mirror")
    dir: str | None = Field(
        None,
        min_length=1,
        description="a folder that already holds the four MNIST files (a shared dataset folder, "
        "or one filled on a login node): plain or gzipped IDX, named train-images-idx3-ubyte "
        "or train-images.idx3-ubyte, with or without .gz; checked once against the SHA-256 of "
        "the decompressed files. Set, the workflow reads MNIST there and never downloads "
        "(null: download into data/raw/mnist)",
    )

    @model_validator(mode="after")
    def _all_files(self):
        if set(self.checksums) != set(SHA256):
            raise ValueError(
                f"checksums must name exactly the files {sorted(SHA256)}; "
                f"got {sorted(self.checksums)}"
            )
        return self


_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08


class DataError(ValueError):
    """A data file that is missing, malformed or fails its checksum."""


class ChecksumError(DataError):
    """A file whose SHA-256 sum differs from the expected one."""


class DownloadError(DataError):
    """No mirror served a file: one message listing each mirror's failure."""


# ------------------------------------------------------------------ reading


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({error}); delete it and download it again "
            "(snakemake --cores 1 download_mnist, or gradmatch download-mnist)"
        ) from error


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzip or plain) and check its magic number and size.

    Returns a uint8 array with the shape the header declares. A wrong magic number, another
    value type, or fewer or more value bytes than the header declares raise one DataError
    naming the file.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(
            f"{source}: no such IDX file; download MNIST first (gradmatch download-mnist)"
        )
    data = _read_bytes(source)
    fix = "delete it and download it again (gradmatch download-mnist)"
    if len(data) < 4:
        raise DataError(f"{source}: {len(data)} bytes, too short for an IDX header; {fix}")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"{source}: IDX magic number {found}, expected {magic}; {fix}")
    if data[2] != _UBYTE:
        raise DataError(f"{source}: IDX value type 0x{data[2]:02x}, expected 0x08 (ubyte); {fix}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{source}: header declares {ndim} dimensions but the file ends first; {fix}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise DataError(
            f"{source}: header declares shape {shape} ({expected} bytes of values), the file holds "
            f"{len(data) - header}; the file is truncated or corrupt: {fix}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def candidate_names(stem: str) -> tuple[str, ...]:
    """The file names accepted for one MNIST file, in the order they are looked for: the names
    as distributed (``train-images-idx3-ubyte``) and with a dot (``train-images.idx3-ubyte``,
    as some mirrors and Kaggle copies name them), each gzipped (``.gz``) first, then plain."""
    dotted = stem.replace("-idx", ".idx", 1)
    return (f"{stem}.gz", stem, f"{dotted}.gz", dotted)


def locate(root: str | os.PathLike, stem: str) -> Path:
    """The file of MNIST file ``stem`` (e.g. ``train-images-idx3-ubyte``) under ``root``: the
    first of :func:`candidate_names` that exists; FileNotFoundError naming them all else."""
    folder = Path(root)
    for name in candidate_names(stem):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{folder}: no MNIST file {stem} (looked for {', '.join(candidate_names(stem))}); "
        f"download it with `gradmatch download-mnist --dest {folder}` (or the workflow rule "
        "download_mnist), point config key mnist.dir at a folder holding the four files, or "
        "use dataset: digits offline"
    )


def locate_all(root: str | os.PathLike) -> dict[str, Path]:
    """MNIST file stem -> its file under ``root``, for all four files (see :func:`locate`)."""
    return {stem: locate(root, stem) for stem in sorted(RAW_SHA256)}


def load_mnist(split: str, root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 784) uint8 and labels (n,) uint8 of the MNIST ``split`` under ``root``."""
    if split not in FILES:
        raise ValueError(f"MNIST split {split!r} unknown; choose one of {sorted(FILES)}")
    folder = Path(root)
    image_path, label_path = (locate(folder, stem) for stem in FILES[split])
    images = read_idx(image_path, IMAGE_MAGIC)
    labels = read_idx(label_path, LABEL_MAGIC)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{image_path}: images of shape {images.shape}, expected (n, 28, 28)")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{label_path}: {labels.shape} labels for {images.shape[0]} images in {image_path}; "
            "the two files come from different splits or downloads"
        )
    if labels.size and labels.max() >= N_CLASSES:
        raise DataError(f"{label_path}: label {labels.max()} outside 0..9")
    return images.reshape(images.shape[0], -1), labels


# ------------------------------------------------------------------ a folder of one's own


def verify_folder(
    root: str | os.PathLike, expected: Mapping[str, str] | None = None
) -> dict[str, dict]:
    """Check the four MNIST files under ``root`` against the SHA-256 of their decompressed
    contents (:data:`RAW_SHA256`, or ``expected`` by file stem), so that a plain copy and one
    gzipped again by another tool both pass.

    Returns, by file stem, ``{"path", "size", "mtime_ns", "sha256"}`` of the file found (size
    and modification time of the file on disk, the sum of its decompressed bytes): what
    :func:`stamp_is_current` compares later. Files whose sums differ raise one ChecksumError naming
    each file, the expected and the actual sum.
    """
    sums = dict(RAW_SHA256 if expected is None else expected)
    found, wrong = {}, []
    for stem, path in locate_all(root).items():
        actual = hashlib.sha256(_read_bytes(path)).hexdigest()
        if actual != sums[stem]:
            wrong.append(f"{path}: sha256 {actual} (decompressed), expected {sums[stem]}")
        stat = path.stat()
        found[stem] = {
            "path": str(path.absolute()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": actual,
        }
    if wrong:
        raise ChecksumError(
            f"{Path(root)}: not the published MNIST files: {'; '.join(wrong)}. Fix: replace "
            "the file(s) with an unmodified copy (or download them: gradmatch download-mnist "
            "--dest FOLDER), or leave config key mnist.dir unset to download MNIST"
        )
    return found


def write_stamp(root: str | os.PathLike, stamp: str | os.PathLike, expected=None) -> bool:
    """Verify the folder ``root`` once: unless ``stamp`` already records these very files
    (:func:`stamp_is_current`), check them (:func:`verify_folder`) and record what was verified
    in the JSON file ``stamp`` (atomically, outside the user's folder). True when it verified."""
    sums = dict(RAW_SHA256 if expected is None else expected)
    if stamp_is_current(root, stamp, sums):
        return False
    files = verify_folder(root, sums)
    record = {"dir": str(Path(root).absolute()), "expected": sums, "files": files}
    with atomic_path(stamp) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return True


def stamp_is_current(
    root: str | os.PathLike, stamp: str | os.PathLike, expected: Mapping[str, str] | None = None
) -> bool:
    """Whether ``stamp`` (from :func:`write_stamp`) verified the files under ``root`` as they
    are now, against the same sums: the same folder, the same files, with the same sizes and
    modification times."""
    sums = dict(RAW_SHA256 if expected is None else expected)
    try:
        record = json.loads(Path(stamp).read_text())
        verified = record["files"]
        if record["dir"] != str(Path(root).absolute()) or record["expected"] != sums:
            return False
        for stem, path in locate_all(root).items():
            stat = path.stat()
            now = {"path": str(path.absolute()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            if any(verified[stem].get(key) != value for key, value in now.items()):
                return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False  # no stamp, or not one of ours: verify again
    return True


# ------------------------------------------------------------------ download


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_url(url: str, target: Path, timeout: float) -> None:
    """Copy ``url`` (http, https or file) to ``target``."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out)


def describe_failure(error: BaseException, timeout: float) -> str:
    """One phrase for why one mirror failed: malformed URL, HTTP error, timeout, checksum, ..."""
    reason = getattr(error, "reason", None)
    if isinstance(error, ChecksumError):
        return f"checksum mismatch ({error})"
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP error {error.code} {error.reason}"
    if isinstance(error, TimeoutError) or isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, urllib.error.URLError):
        return f"unreachable ({reason})"
    if isinstance(error, http.client.HTTPException):
        return f"broken HTTP response ({type(error).__name__}: {error})"
    if isinstance(error, ValueError):
        return f"malformed URL ({error})"
    return f"{type(error).__name__}: {error}"


def _print_failure(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fetch_verified(
    name: str,
    dest: Path,
    mirrors: Iterable[str],
    expected: str,
    fetch: Callable,
    timeout: float,
    report: Callable[[str], None],
) -> None:
    """Fetch ``name`` from the first mirror that serves the expected bytes, reporting each
    mirror that fails and trying the next; one DownloadError listing every failure else."""
    mirrors = list(mirrors)
    failures = []
    for index, mirror in enumerate(mirrors):
        url = mirror.rstrip("/") + "/" + name
        try:
            with atomic_path(dest / name) as tmp:
                fetch(url, tmp, timeout)
                actual = sha256_of(tmp)
                if actual != expected:
                    raise ChecksumError(f"sha256 {actual}, expected {expected}")
            return
        except (OSError, ValueError, http.client.HTTPException) as error:
            # OSError: URLError, HTTPError, timeouts, refused connections; ValueError: a
            # malformed URL (and ChecksumError); HTTPException: a truncated HTTP response
            failure = f"{url}: {describe_failure(error, timeout)}"
            failures.append(failure)
            following = "trying the next mirror" if index + 1 < len(mirrors) else "no mirror left"
            where = f"mirror {index + 1}/{len(mirrors)}"
            report(f"download-mnist: {where} failed: {failure}; {following}")
    raise DownloadError(
        f"{dest / name}: no mirror served a file with the expected SHA-256 {expected}; nothing "
        f"was written under that name. Tried: {'; '.join(failures) or 'no mirrors'}. Fix: add a "
        "working mirror to config key mnist.mirrors, or place the verified file there by hand."
    )


def download_mnist(
    dest: str | os.PathLike,
    mirrors: Iterable[str] = DEFAULT_MIRRORS,
    checksums: Mapping[str, str] | None = None,
    *,
    fetch: Callable[[str, Path, float], None] = fetch_url,
    timeout: float = 60.0,
    report: Callable[[str], None] | None = None,
) -> list[Path]:
    """Download the four gzipped MNIST files into ``dest``, each verified by SHA-256.

    A file already in ``dest`` with the right checksum is kept. Otherwise the mirrors are tried
    in order; a download lands under its final name only after its checksum matched (written
    under a temporary name, then renamed). Each mirror that fails (malformed URL, HTTP error,
    timeout, unreachable host, checksum mismatch) is reported through ``report`` (default: one
    line on stderr) and the next one is tried. If no mirror serves the expected bytes, one
    DownloadError names the file, each mirror's failure (with the actual checksum where the
    bytes differed) and the fix.
    """
    sums = dict(SHA256 if checksums is None else checksums)
    missing = sorted(set(SHA256) - set(sums))
    if missing:
        raise DataError(f"mnist.checksums lacks {missing}; give the SHA-256 of all four files")
    mirrors = list(mirrors)
    if not mirrors:
        raise DataError("mnist.mirrors is empty; list at least one URL folder holding the files")
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(SHA256):
        target = folder / name
        if not (target.is_file() and sha256_of(target) == sums[name]):
            _fetch_verified(
                name, folder, mirrors, sums[name], fetch, timeout, report or _print_failure
            )
        written.append(target)
    return written
