"""Job configs: frozen dataclasses loaded from YAML, with `--set key=value` overrides.

Every problem is collected and reported at once, each named by its full dotted path
(`generator.backend`, `sources.0.images`) together with the valid choices.
`schema.py` holds the dataclasses, `load.py` the reading and building (`read.py` bounds the
YAML), `validate.py` the checks across values and, for a build, `check_paths`.
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
from mminstruct.config.validate import ENV_NAME, check_paths

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
    "check_paths",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "load_config",
]
