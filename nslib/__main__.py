"""``python -m nslib``: see :mod:`nslib.runner._cli`."""

import sys

from .runner._cli import main

if __name__ == "__main__":
    sys.exit(main())
