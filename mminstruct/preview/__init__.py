"""Preview: one image through the build's own code path -> console text, a PNG and a page.

Takes a config and one image (by id from the sources, or a bare file); gives a `Preview` with
the context, every model call, the instructions and the rejections. Start at `run.py`.
"""

from mminstruct.preview.console import print_for_reader
from mminstruct.preview.report import Call, Preview, format_preview
from mminstruct.preview.run import bare_record, find_record, preview, write_preview

__all__ = [
    "Call",
    "Preview",
    "bare_record",
    "find_record",
    "format_preview",
    "preview",
    "print_for_reader",
    "write_preview",
]
