"""`python -m mminstruct.sample OUT_DIR`: draw the demo sample again."""

from mminstruct.sample.make import main

main()
