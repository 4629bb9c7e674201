"""Generate: image records (and their context) -> instructions, or rejections with a reason.

Takes a batch of `ImageRecord`s (or a stream of batches: `generate_stream`); gives one `Generated`
per record. Start at `factory.py` (the `Generator` interface and `make_generator`), then
`rule_based/` or `model.py` with `backends/` and `scheduler.py`.
"""

from mminstruct.generate.backends import Backend, Completion, Message, Request, make_backend
from mminstruct.generate.factory import BACKENDS, Generator, make_generator
from mminstruct.generate.parse import REASONS, parse_completion
from mminstruct.generate.prompts import build_messages, load_task_templates, load_template
from mminstruct.generate.scheduler import Batch, generate_stream
from mminstruct.generate.servers import stopping_servers

__all__ = [
    "BACKENDS",
    "REASONS",
    "Backend",
    "Batch",
    "Completion",
    "Generator",
    "Message",
    "Request",
    "build_messages",
    "generate_stream",
    "load_task_templates",
    "load_template",
    "make_backend",
    "make_generator",
    "parse_completion",
    "stopping_servers",
]
