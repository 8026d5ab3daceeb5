"""Sources of class labels: two_moons and spirals, MNIST-format IDX files, scikit-learn's bundled sets, NPZ."""

from __future__ import annotations

import builtins
import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bbbrun.config import DataConfig, Function, Source
from bbbrun.data import make_dataset
from bbbrun.data.idx import FILES
from bbbrun.errors import DataError

CLASSIFY = "classification"


@pytest.mark.parametrize("function", [Function.TWO_MOONS, Function.SPIRALS])
def test_shapes_are_seeded_balanced_and_two_dimensional(function: Function) -> None:
    cfg = DataConfig(function=function, num_points=200, noise_std=0.05)
    a, b = make_dataset(cfg, 3, CLASSIFY), make_dataset(cfg, 3, CLASSIFY)
    other = make_dataset(cfg, 4, CLASSIFY)
    assert a.x_train.shape[1] == 2 and a.classes == ("0", "1")
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, other.x_train)
    labels = np.concatenate([a.y_train, a.y_val]).ravel()
    assert (labels == 0).sum() == (labels == 1).sum() == 100


def test_noiseless_moons_lie_on_their_half_circles() -> None:
    ds = make_dataset(DataConfig(function=Function.TWO_MOONS, num_points=100, noise_std=0.0), 0, CLASSIFY)
    x, y = ds.x_train, ds.y_train.ravel()
    np.testing.assert_allclose(np.hypot(x[y == 0, 0], x[y == 0, 1]), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.hypot(x[y == 1, 0] - 1.0, x[y == 1, 1] - 0.5), 1.0, atol=1e-5)
    assert (x[y == 0, 1] >= -1e-6).all() and (x[y == 1, 1] <= 0.5 + 1e-6).all()


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_folder(folder: Path, num_train: int = 40, num_test: int = 10, gz: bool = False) -> dict[str, Any]:
    """Tiny 3x4 'images' whose labels 0..2 are known, in the four standard file names."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", num_train), ("test", num_test)):
        labels = np.arange(count) % 3
        images = rng.integers(0, 256, (count, 3, 4))
        arrays[split] = (images, labels)
        for name, array in zip(FILES[split], (images, labels), strict=True):
            data = idx_bytes(array)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_reads_the_standard_split_scaled_to_unit_range(tmp_path: Path, gz: bool) -> None:
    arrays = write_idx_folder(tmp_path, gz=gz)
    ds = make_dataset(DataConfig(source=Source.IDX, path=str(tmp_path), val_fraction=0.25), 0, CLASSIFY)
    assert ds.classes == ("0", "1", "2") and ds.input_dim == 12
    assert len(ds.y_train) == 30 and len(ds.y_val) == 10 and ds.x_test is not None and len(ds.x_test) == 10
    images, labels = arrays["test"]
    np.testing.assert_allclose(ds.x_test, images.reshape(10, 12) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_test.ravel(), labels)
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b"\x00\x00\x08\x02" + b[4:], "not an IDX file"),
    (lambda b: b[:-3], "truncated"),
    (lambda b: b[:6], "truncated"),
])
def test_idx_refuses_wrong_magic_and_truncation(tmp_path: Path, damage: Any, message: str) -> None:
    write_idx_folder(tmp_path)
    path = tmp_path / FILES["train"][0]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message):
        make_dataset(DataConfig(source=Source.IDX, path=str(tmp_path)), 0, CLASSIFY)


def test_idx_names_a_missing_file_and_refuses_regression(tmp_path: Path) -> None:
    write_idx_folder(tmp_path)
    (tmp_path / FILES["test"][1]).unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        make_dataset(DataConfig(source=Source.IDX, path=str(tmp_path)), 0, CLASSIFY)
    with pytest.raises(DataError, match="categorical"):
        make_dataset(DataConfig(source=Source.IDX, path=str(tmp_path)), 0)


def test_npz_integer_labels_and_non_integers_refused(tmp_path: Path) -> None:
    x = np.linspace(0, 1, 50)[:, None]
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50) % 2 * 5)
    ds = make_dataset(DataConfig(source=Source.NPZ, path=str(tmp_path / "d.npz")), 0, CLASSIFY)
    assert ds.classes == ("0", "5") and set(ds.y_train.ravel()) == {0.0, 1.0}
    np.savez(tmp_path / "e.npz", x=x, y=np.arange(50) % 2 + 0.5)
    with pytest.raises(DataError, match="not an integer"):
        make_dataset(DataConfig(source=Source.NPZ, path=str(tmp_path / "e.npz")), 0, CLASSIFY)


def test_uci_folders_have_no_labels() -> None:
    with pytest.raises(DataError, match="not class labels"):
        make_dataset(DataConfig(source=Source.UCI, path="x"), 0, CLASSIFY)


def test_sklearn_sets_load_with_their_class_names() -> None:
    pytest.importorskip("sklearn", reason="scikit-learn is the optional extra bbbrun[sklearn]")
    iris = make_dataset(DataConfig(source=Source.SKLEARN, name="iris", test_fraction=0.2), 0, CLASSIFY)
    assert iris.classes == ("setosa", "versicolor", "virginica") and iris.input_dim == 4
    assert len(iris.y_train) + len(iris.y_val) + len(iris.y_test) == 150  # type: ignore[arg-type]
    diabetes = make_dataset(DataConfig(source=Source.SKLEARN, name="diabetes"), 0)
    assert diabetes.classes == () and diabetes.input_dim == 10
    with pytest.raises(DataError, match="classification set"):
        make_dataset(DataConfig(source=Source.SKLEARN, name="digits"), 0)
    with pytest.raises(DataError, match="not one of"):
        make_dataset(DataConfig(source=Source.SKLEARN, name="mnist"), 0, CLASSIFY)


def test_sklearn_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_sklearn(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(DataError, match=r"pip install 'bbbrun\[sklearn\]'"):
        make_dataset(DataConfig(source=Source.SKLEARN, name="iris"), 0, CLASSIFY)


def test_sklearn_source_needs_a_name(tmp_path: Path) -> None:
    from bbbrun.config import config_from_dict
    from bbbrun.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data\.name"):
        config_from_dict({"data": {"source": "sklearn"}})
