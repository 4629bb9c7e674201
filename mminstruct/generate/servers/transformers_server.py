"""`transformers serve MODEL`: transformers' own OpenAI-compatible server
(`pip install 'mminstruct[serve]'`); add `--continuous-batching` in `server.args` on a GPU."""

from __future__ import annotations

from mminstruct.generate.servers.spec import Spec, executable


def command_line(spec: Spec) -> list[str]:
    """One device (transformers serve has no tensor parallelism), the model preloaded."""
    argv = [executable("transformers"), "serve", spec.model]
    argv += ["--host", spec.host, "--port", str(spec.port), "--dtype", spec.dtype]
    if spec.max_model_len:
        argv += ["--max-model-len", str(spec.max_model_len)]
    return [*argv, *spec.args]
