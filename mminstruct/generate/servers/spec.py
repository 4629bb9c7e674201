"""What a preset needs to write its engine's command line: one started server's settings."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"  # servers listen here only: nothing outside the node reaches them


@dataclass(frozen=True)
class Spec:
    """One start of a server: what to serve, where, on how many GPUs."""

    model: str  # generator.model: a local folder or a hub name (the served model's name too)
    port: int  # a free port on HOST, chosen at each start
    tensor_parallel: int  # GPUs this server spreads the model over
    dtype: str  # generator.server.dtype ("auto", "bfloat16", ...)
    max_model_len: int | None  # generator.server.max_model_len; None: the model's own
    args: tuple[str, ...] = ()  # generator.server.args, appended as given
    host: str = HOST

    def fields(self) -> dict[str, str]:
        """The `{placeholder}` values of a `generator.server.command`."""
        return {
            "host": self.host,
            "port": str(self.port),
            "model": self.model,
            "tensor_parallel": str(self.tensor_parallel),
            "dtype": self.dtype,
            "max_model_len": "" if self.max_model_len is None else str(self.max_model_len),
        }


def executable(name: str) -> str:
    """`name` from this Python's environment when installed there, else from PATH, else as is
    (starting it then fails with a message that names it)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name) or name
