"""`python -m mminstruct` is the `mminstruct` command."""

import sys

from mminstruct.cli import main

sys.exit(main())
