"""Experiment configuration: the schema (`schema`), validation (`validate`), YAML and overrides (`loading`)."""

from bbbrun.config.loading import (
    config_to_dict,
    dump_config,
    load_config,
    parse_override,
    read_text_file,
    read_yaml_mapping,
    set_dotted,
)
from bbbrun.config.schema import (
    Activation,
    Config,
    DataConfig,
    Estimator,
    Function,
    KLEstimator,
    KLWeighting,
    Likelihood,
    ModelConfig,
    ModelType,
    OptimConfig,
    PredictConfig,
    Prior,
    Source,
    Tracking,
    TrainConfig,
)
from bbbrun.config.validate import check_device_name, config_from_dict, unknown_key_message

__all__ = [
    "Activation", "Config", "DataConfig", "Estimator", "Function", "KLEstimator", "KLWeighting", "Likelihood",
    "ModelConfig", "ModelType", "OptimConfig", "PredictConfig", "Prior", "Source", "Tracking", "TrainConfig",
    "check_device_name",
    "config_from_dict", "config_to_dict", "dump_config", "load_config", "parse_override", "read_text_file",
    "read_yaml_mapping", "set_dotted", "unknown_key_message",
]
