"""`mminstruct preview ... | head`: a reader that stops early is no error."""

from __future__ import annotations

import subprocess
import sys

from mminstruct.preview import print_for_reader


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(tmp_path):
    """The pipe is closed before the preview prints, as `| head -1` does on long output:
    the files are written, nothing is said on stderr, the status is 0."""
    command = [sys.executable, "-m", "mminstruct", "preview", "demo", "--image-id", "3"]
    process = subprocess.Popen(
        [*command, "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # the reader is gone before a byte is written
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err and b"Exception" not in err
    assert (tmp_path / "preview.png").is_file() and (tmp_path / "preview.html").is_file()


def test_a_reader_that_stays_gets_everything(capsys):
    assert print_for_reader("one\ntwo") == 0
    assert capsys.readouterr().out == "one\ntwo\n"
