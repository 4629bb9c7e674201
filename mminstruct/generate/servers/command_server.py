"""Any other server (llama.cpp's `llama-server`, TGI): `generator.server.command` with its
placeholders filled in, e.g. `[llama-server, -m, "{model}", --port, "{port}"]`."""

from __future__ import annotations

from collections.abc import Sequence

from mminstruct.generate.servers.spec import Spec


def command_line(spec: Spec, command: Sequence[str]) -> list[str]:
    """`command` with {host}, {port}, {model}, {tensor_parallel}, {dtype}, {max_model_len}
    replaced (checked when the config is loaded), then `server.args`."""
    fields = spec.fields()
    return [part.format(**fields) for part in command] + list(spec.args)
