"""`vllm serve MODEL`: vLLM's OpenAI-compatible server (`pip install vllm`)."""

from __future__ import annotations

from mminstruct.generate.servers.spec import Spec, executable


def command_line(spec: Spec) -> list[str]:
    """vLLM on `spec.port`, the model split over `spec.tensor_parallel` GPUs."""
    argv = [executable("vllm"), "serve", spec.model, "--host", spec.host, "--port", str(spec.port)]
    argv += ["--tensor-parallel-size", str(spec.tensor_parallel), "--dtype", spec.dtype]
    if spec.max_model_len:
        argv += ["--max-model-len", str(spec.max_model_len)]
    return [*argv, *spec.args]
