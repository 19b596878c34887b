"""``python -m nslib``: see :mod:`nslib._runner`."""

import sys

from ._runner import main

if __name__ == "__main__":
    sys.exit(main())
