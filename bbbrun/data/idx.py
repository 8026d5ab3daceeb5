"""`data.source: idx`: MNIST-format IDX files, optionally gzipped, in one folder.

    train-images-idx3-ubyte  train-labels-idx1-ubyte     (60,000 rows in MNIST)
    t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte      (10,000 rows: the test split)

each possibly with a .gz suffix. An IDX file is a 4-byte magic number (two
zero bytes, a type code, 0x08 for unsigned bytes, and the number of
dimensions), each dimension as a big-endian 32-bit integer, then the values.
Images are flattened and scaled to [0, 1]; data.val_fraction of the training
file's rows validate, the t10k files are the test rows.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from bbbrun.config import DataConfig
from bbbrun.data.assemble import assemble
from bbbrun.data.base import Dataset
from bbbrun.data.labels import encode_labels
from bbbrun.data.splits import train_val_split
from bbbrun.errors import DataError

UNSIGNED_BYTE = 0x08
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def find_file(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder} has no {name} (or {name}.gz); data.source=idx needs the four MNIST files "
                    f"{', '.join(n for pair in FILES.values() for n in pair)}")


def read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None


def parse_idx(data: bytes, ndim: int, path: Path) -> np.ndarray:
    """The array an IDX file of unsigned bytes with `ndim` dimensions holds; wrong magic or length is refused."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != UNSIGNED_BYTE or data[3] != ndim:
        raise DataError(f"{path} is not an IDX file of {ndim}-D unsigned bytes (magic number "
                        f"{data[:4].hex() or 'missing'}, expected 000008{ndim:02x})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: its header ends early")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(f"{path} is truncated or has trailing bytes: {len(data)} bytes, its header "
                        f"{'x'.join(map(str, shape))} needs {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, pixels) float32 in [0, 1] and (n,) labels of one split's two files."""
    image_name, label_name = FILES[split]
    image_path, label_path = find_file(folder, image_name), find_file(folder, label_name)
    images = parse_idx(read_bytes(image_path), 3, image_path)
    labels = parse_idx(read_bytes(label_path), 1, label_path)
    if len(images) != len(labels):
        raise DataError(f"{image_path} holds {len(images)} images but {label_path} {len(labels)} labels")
    return images.reshape(len(images), -1).astype(np.float32) / 255.0, labels


class IdxSource:
    def load(self, cfg: DataConfig, seed: int) -> Dataset:
        raise DataError("data.source=idx holds class labels; train it with model.likelihood=categorical")

    def load_labelled(self, cfg: DataConfig, seed: int) -> Dataset:
        folder = Path(str(cfg.path))
        if not folder.is_dir():
            raise DataError(f"{folder} is not a folder; data.source=idx needs a folder of MNIST-format files")
        x_train, y_train = read_pair(folder, "train")
        x_test, y_test = read_pair(folder, "test")
        if x_train.shape[1] != x_test.shape[1]:
            raise DataError(f"{folder}: training images have {x_train.shape[1]} pixels, test images "
                            f"{x_test.shape[1]}")
        num_train = len(y_train)
        rows = {**train_val_split(np.arange(num_train), cfg.val_fraction, cfg.split_seed),
                "test": np.arange(num_train, num_train + len(y_test))}
        labels = [str(v) for v in np.concatenate([y_train, y_test])]
        y, classes = encode_labels(labels, rows, str(folder))
        names = tuple(f"pixel{j}" for j in range(x_train.shape[1]))
        return assemble(np.concatenate([x_train, x_test]), y, rows, names, "label", classes=classes)

    def ground_truth(self, cfg: DataConfig, x: np.ndarray) -> np.ndarray | None:
        return None

    def plot_range(self, cfg: DataConfig) -> tuple[float, float] | None:
        return None
