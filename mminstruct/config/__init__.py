"""Job configs: frozen dataclasses loaded from YAML, with `--set key=value` overrides.

Every problem is collected and reported at once, each named by its full dotted path
(`generator.backend`, `sources.0.images`) together with the valid choices.
`schema.py` holds the dataclasses, `load.py` the reading and building, `validate.py` the
checks across values.
"""

from mminstruct.config.load import config_from_dict, config_to_dict, dump_config, load_config
from mminstruct.config.schema import (
    SOURCE_KINDS,
    CocoSourceConfig,
    Config,
    ContextConfig,
    ConversationTask,
    DetailTask,
    GeneratorConfig,
    OutputConfig,
    PreferenceTask,
    PsgSourceConfig,
    ReasoningTask,
    SourceConfig,
    TasksConfig,
    VisualGenomeSourceConfig,
    annotation_files,
)
from mminstruct.config.validate import ENV_NAME

__all__ = [
    "ENV_NAME",
    "SOURCE_KINDS",
    "CocoSourceConfig",
    "Config",
    "ContextConfig",
    "ConversationTask",
    "DetailTask",
    "GeneratorConfig",
    "OutputConfig",
    "PreferenceTask",
    "PsgSourceConfig",
    "ReasoningTask",
    "SourceConfig",
    "TasksConfig",
    "VisualGenomeSourceConfig",
    "annotation_files",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "load_config",
]
