"""Printing a preview to a reader that may stop early (`mminstruct preview ... | head`)."""

from __future__ import annotations

import os
import sys


def print_for_reader(text: str) -> int:
    """Print `text` and flush; the exit status: 0, also when the reader closed the pipe early.

    A reader that stops (`head`) has what it asked for, and the preview's files are written
    before anything is printed, so that is no failure. stdout then points at the null device,
    so that Python's own flush at exit finds no broken pipe to complain about.
    """
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return 0


def _silence_stdout() -> None:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)
