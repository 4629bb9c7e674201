"""Find the files that ship with the package: configs, templates and the bundled sample.

In a wheel they sit inside the package (`mminstruct/configs`, ...); in a source checkout
`configs/` and `templates/` sit at the top of the repository. Both are looked up here.
"""

from __future__ import annotations

from pathlib import Path

from mminstruct.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE_PREFIX = "package:"


def shipped_dir(name: str) -> Path:
    """The folder `name` ("configs", "templates", "sample") of this installation."""
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the installed mminstruct has no '{name}' folder; reinstall it")


def shipped_configs() -> list[Path]:
    """Every config that ships with the package."""
    return sorted(shipped_dir("configs").glob("*.yaml"))


def find_config(path_or_name: str | Path) -> Path:
    """A config file by path, or by the name of a shipped config (`demo`, `demo.yaml`)."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    name = path.name if path.suffix else f"{path.name}.yaml"
    shipped = shipped_dir("configs") / name
    if len(path.parts) <= 2 and shipped.is_file():
        return shipped
    names = ", ".join(p.stem for p in shipped_configs())
    raise ConfigError(
        [f"no such file; give a path to a YAML config or a shipped config name ({names})"],
        str(path_or_name),
    )


def resolve_path(text: str) -> Path:
    """A path from a config: `package:sample/images` points inside the installed package."""
    if text.startswith(PACKAGE_PREFIX):
        relative = Path(text[len(PACKAGE_PREFIX) :])
        return shipped_dir(relative.parts[0]).joinpath(*relative.parts[1:])
    return Path(text).expanduser()
