"""Errors a user can act on. The CLI prints their message, never a traceback."""


class MminstructError(Exception):
    """Base class for errors whose message tells the user what to do next."""


class ConfigError(MminstructError):
    """One or more problems in a job config, reported all at once."""

    def __init__(self, problems: list[str], origin: str = "config"):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{origin} has {len(self.problems)} problem(s):\n{lines}")


class InputError(MminstructError):
    """An input file that cannot be used as a whole (missing, not JSON, wrong shape)."""
