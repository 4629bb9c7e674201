"""Managed inference servers: `generator.server` -> a started, watched, stopped server.

Takes the generator config (engine preset or command, GPUs, limits); gives a `ManagedServer`
whose `base_url` the openai backend talks to. Start at `base.py`; the presets only build
their command line (`vllm_server.py`, `sglang_server.py`, `transformers_server.py`,
`command_server.py`), `placement.py` picks the GPUs, `cleanup.py` stops every server at exit.
"""

from mminstruct.generate.servers.base import PRESETS, ManagedServer, ServerError, free_port
from mminstruct.generate.servers.cleanup import stop_all, stopping_servers

__all__ = ["PRESETS", "ManagedServer", "ServerError", "free_port", "stop_all", "stopping_servers"]
