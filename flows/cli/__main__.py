"""``python -m flows.cli`` is ``mltoolkit``."""

from flows.cli import main

# Guarded: the process task runner's spawned workers import this module as __mp_main__.
if __name__ == "__main__":
    main()
