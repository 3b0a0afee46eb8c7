"""``python -m aioentra``: the command line (see :mod:`aioentra._cli`)."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
