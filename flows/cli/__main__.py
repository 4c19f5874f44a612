"""``python -m flows.cli`` is ``mltoolkit``."""

from flows.cli import main

main()
