"""`python -m sglang.launch_server`: SGLang's OpenAI-compatible server (`pip install sglang`)."""

from __future__ import annotations

import sys

from mminstruct.generate.servers.spec import Spec


def command_line(spec: Spec) -> list[str]:
    """SGLang on `spec.port`, the model split over `spec.tensor_parallel` GPUs."""
    argv = [sys.executable, "-m", "sglang.launch_server", "--model-path", spec.model]
    argv += ["--host", spec.host, "--port", str(spec.port)]
    argv += ["--tp-size", str(spec.tensor_parallel), "--dtype", spec.dtype]
    if spec.max_model_len:
        argv += ["--context-length", str(spec.max_model_len)]
    return [*argv, *spec.args]
