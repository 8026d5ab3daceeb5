from __future__ import annotations

import numpy as np

from bbbrun.config import DataConfig, Function
from bbbrun.data import make_dataset, split_indices, true_function


def test_seed_cubic_is_the_tutorial_formula() -> None:
    x = np.array([-3.0, -1.0, 0.0, 0.5, 3.0])
    assert np.allclose(true_function(Function.SEED_CUBIC, x), -1.8 * x**3 + 8 * x)


def test_sizes_and_split_rule() -> None:
    ds = make_dataset(DataConfig(num_points=1000, val_fraction=0.2), seed=0)
    assert ds.x_val.shape == (200, 1) and ds.x_train.shape == (800, 1)
    assert ds.x_train.dtype == np.float32
    train_idx, val_idx = split_indices(1000, 0.2, 1996)
    assert len(np.intersect1d(train_idx, val_idx)) == 0
    assert len(np.union1d(train_idx, val_idx)) == 1000


def test_split_matches_the_tutorial_recipe() -> None:
    np.random.seed(1996)
    expected = np.sort(np.random.choice(500, int(500 * 0.2), replace=False))
    _, val_idx = split_indices(500, 0.2, 1996)
    assert np.array_equal(val_idx, expected)


def test_noise_matches_the_tutorial_stream_and_is_deterministic() -> None:
    cfg = DataConfig(num_points=400)
    a, b = make_dataset(cfg, seed=3), make_dataset(cfg, seed=3)
    assert np.array_equal(a.y_train, b.y_train)
    np.random.seed(3)
    x = np.linspace(-3, 3, 400)
    y = true_function(Function.SEED_CUBIC, x) + np.random.normal(0, 1.5, 400)
    train_idx, _ = split_indices(400, 0.2, 1996)
    assert np.allclose(a.y_train.ravel(), y[train_idx].astype(np.float32))
    assert not np.array_equal(make_dataset(cfg, seed=4).y_train, a.y_train)


def test_noise_level_is_as_configured() -> None:
    ds = make_dataset(DataConfig(num_points=20000, noise_std=1.5), seed=0)
    residual = np.concatenate([ds.y_train - ds.f_train, ds.y_val - ds.f_val])
    assert abs(residual.std() - 1.5) < 0.03
