from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bbbrun.config import (
    Config,
    KLEstimator,
    Likelihood,
    Prior,
    config_from_dict,
    dump_config,
    load_config,
    parse_override,
)
from bbbrun.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_seed_config_has_the_tutorial_values() -> None:
    cfg = load_config(ROOT / "configs" / "seed.yaml")
    assert (cfg.data.num_points, cfg.data.noise_std, cfg.data.val_fraction, cfg.data.split_seed) == (
        20000, 1.5, 0.2, 1996)
    assert (cfg.model.hidden_dim, cfg.model.num_layers, cfg.model.likelihood_std) == (20, 5, 0.1)
    assert (cfg.model.init_mu_std, cfg.model.init_rho_mean, cfg.model.bias_rho_init) == (0.001, -2.5, 0.0)
    assert (cfg.optim.lr, cfg.train.epochs, cfg.train.batch_size, cfg.train.log_every) == (0.01, 5000, None, 500)
    assert cfg.predict.num_samples == 1000 and cfg.predict.interval == (0.05, 0.95)
    assert cfg.model.likelihood is Likelihood.FIXED and cfg.model.kl is KLEstimator.MONTE_CARLO


def test_every_shipped_config_loads() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        # configs/uci.yaml is completed by its data: `bbbrun benchmark uci` or data.path=... on the command line.
        overrides = ["data.path=somewhere"] if "source: uci" in path.read_text() else []
        assert isinstance(load_config(path, overrides), Config), path
    with pytest.raises(ConfigError, match=r"needs data\.path, a UCI benchmark folder"):
        load_config(ROOT / "configs" / "uci.yaml")


def test_overrides_are_applied_and_typed(tiny_config: Path) -> None:
    cfg = load_config(tiny_config, ["train.epochs=1000", "optim.lr=0.005", "seed=3", "train.batch_size=null",
                                    "model.prior=scale_mixture", "optim.betas=[0.8, 0.99]", "optim.lr=1e-3"])
    assert cfg.train.epochs == 1000 and cfg.seed == 3 and cfg.train.batch_size is None
    assert cfg.optim.lr == pytest.approx(1e-3)  # the last override wins; "1e-3" is read as a float
    assert cfg.model.prior is Prior.SCALE_MIXTURE and cfg.optim.betas == (0.8, 0.99)


def test_dumped_config_loads_back_identically(tiny_config: Path, tmp_path: Path) -> None:
    cfg = load_config(tiny_config, ["model.likelihood=learned", "train.batch_size=64"])
    again = tmp_path / "again.yaml"
    again.write_text(dump_config(cfg))
    assert load_config(again) == cfg


def test_defaults_fill_missing_keys() -> None:
    cfg = config_from_dict({"name": "x"})
    assert cfg.model.hidden_dim == 20 and cfg.train.log_every == 500


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"train": {"epochs": -5}}, "train.epochs must be >= 1"),
        ({"train": {"epochs": "many"}}, "train.epochs must be an integer"),
        ({"train": {"epochs": 2.5}}, "train.epochs must be an integer"),
        ({"data": {"val_fraction": 1.0}}, "data.val_fraction must be < 1.0"),
        ({"data": {"val_fraction": 0}}, "data.val_fraction must be > 0.0"),
        ({"optim": {"lr": 0}}, "optim.lr must be > 0.0"),
        ({"optim": {"lr": float("nan")}}, "optim.lr must be a finite number"),
        ({"model": {"prior_std": float("inf")}}, "model.prior_std must be a finite number"),
        ({"model": {"prior_std": -1}}, "model.prior_std must be > 0.0"),
        ({"model": {"activation": "gelu"}}, "model.activation must be one of relu, tanh, silu"),
        ({"model": {"hidden_dimm": 3}}, "did you mean 'model.hidden_dim'"),
        ({"trian": {}}, "did you mean 'train'"),
        ({"predict": {"interval": [0.9, 0.1]}}, "predict.interval must be [lower, upper]"),
        ({"device": "gpu"}, "device must be auto, cpu, cuda or cuda:N"),
        ({"model": {"prior": "scale_mixture", "kl": "closed_form"}}, "model.kl=closed_form needs"),
        ({"data": {"x_min": 3, "x_max": -3}}, "data.x_min must be < data.x_max"),
        ({"data": {"standardize": "yes"}}, "data.standardize must be true or false"),
    ],
)
def test_bad_values_are_rejected_with_the_key(raw: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("train.epochs", "has no '='"),
        ("=3", "has no key"),
        ("train.epochs=abc", "train.epochs must be an integer"),
        ("no.such.key=1", "unknown override key 'no'"),
        ("train.epoch=3", "did you mean 'train.epochs'"),
        ("seed.x=1", "seed is not a section"),
    ],
)
def test_bad_overrides_are_rejected(tiny_config: Path, override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load_config(tiny_config, [override])
    assert fragment in str(err.value)


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntrain:\n  epochs: [1, 2\n")
    with pytest.raises(ConfigError, match="YAML syntax error at line"):
        load_config(path)


def test_non_mapping_and_missing_files(tmp_path: Path) -> None:
    listing = tmp_path / "list.yaml"
    listing.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(listing)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_parse_override_reads_yaml_values() -> None:
    assert parse_override("train.batch_size=null") == ("train.batch_size", None)
    assert parse_override("optim.betas=[0.9, 0.99]") == ("optim.betas", [0.9, 0.99])
    assert parse_override("name=my run") == ("name", "my run")
