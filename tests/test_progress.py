"""Progress: plain log lines with rate and ETA when the output is not a terminal."""

from __future__ import annotations

import logging
import re

from mminstruct.progress import Progress


def test_plain_lines_when_not_a_tty(caplog):
    caplog.set_level(logging.INFO, logger="mminstruct")
    progress = Progress(total=10, every_s=0.0)  # pytest's stderr is not a terminal
    progress.update(4, instructions=12)
    progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    pattern = r"^(\d+)/10 images \((\d+)%\), [\d.]+ images/s, [\d.]+ instructions/s, ETA \S+$"
    assert all(re.match(pattern, line) for line in lines), lines
    assert lines[0].startswith("4/10 images (40%)")


def test_quiet_between_intervals(caplog):
    caplog.set_level(logging.INFO, logger="mminstruct")
    progress = Progress(total=100, every_s=3600.0)
    for _ in range(50):
        progress.update(1)
    assert caplog.records == []
    progress.close()
    assert caplog.records[-1].getMessage().startswith("50/100 images (50%)")
