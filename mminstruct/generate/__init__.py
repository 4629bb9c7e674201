"""Generate: image records (and their context) -> instructions, or rejections with a reason.

Takes a batch of `ImageRecord`s; gives one `Generated` per record. Start at `factory.py` (the
`Generator` interface and `make_generator`), then `rule_based/` or `model.py` with `backends/`.
"""

from mminstruct.generate.backends import Backend, Completion, Message, Request, make_backend
from mminstruct.generate.factory import BACKENDS, Generator, make_generator
from mminstruct.generate.parse import REASONS, parse_completion
from mminstruct.generate.prompts import build_messages, load_task_templates, load_template

__all__ = [
    "BACKENDS",
    "REASONS",
    "Backend",
    "Completion",
    "Generator",
    "Message",
    "Request",
    "build_messages",
    "load_task_templates",
    "load_template",
    "make_backend",
    "make_generator",
    "parse_completion",
]
