"""Progress on long work: a tqdm bar on a terminal, plain periodic log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("mminstruct")


class Progress:
    """Counts images (and instructions); shows rate and ETA."""

    def __init__(self, total: int, label: str = "images", every_s: float = 10.0, prefix: str = ""):
        self.total = total
        self.label = label
        self.prefix = prefix  # e.g. "[rank 3/8] " in a multi-process job
        self.every_s = every_s
        self.done = 0
        self.instructions = 0
        self.tokens = 0
        self.started = self._last = time.monotonic()
        self._bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            desc = f"{prefix}build".strip()
            self._bar = tqdm(total=total, unit="img", dynamic_ncols=True, desc=desc)

    def update(self, images: int, instructions: int = 0, tokens: int = 0) -> None:
        """Record `images` more done, with the instructions and model tokens they gave."""
        self.done += images
        self.instructions += instructions
        self.tokens += tokens
        if self._bar is not None:
            self._bar.update(images)
            self._bar.set_postfix(self._postfix(), refresh=False)
        elif time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            log.info(self.line())

    def line(self) -> str:
        """`1200/5000 images (24%), 150.2 images/s, 410.0 instructions/s, ETA 0:00:25`."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        percent = 100.0 * self.done / self.total if self.total else 100.0
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta != float("inf") else "?"
        tokens = f", {self.tokens / elapsed:.0f} tokens/s" if self.tokens else ""
        return (
            f"{self.prefix}{self.done}/{self.total} {self.label} ({percent:.0f}%), {rate:.1f} images/s, "
            f"{self.instructions / elapsed:.1f} instructions/s{tokens}, ETA {eta_text}"
        )

    def _postfix(self) -> dict[str, int]:
        extra = {"instructions": self.instructions}
        return extra | {"tokens": self.tokens} if self.tokens else extra

    def close(self) -> None:
        """Finish the bar, or log the last line."""
        if self._bar is not None:
            self._bar.close()
        else:
            log.info(self.line())
