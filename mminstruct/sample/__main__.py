"""`python -m mminstruct.sample OUT_DIR`: draw the demo sample again."""

from mminstruct.sample.scenes import main

main()
