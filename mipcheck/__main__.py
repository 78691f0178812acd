"""``python -m mipcheck``: the same command line as the ``mipcheck`` script (mipcheck.cli)."""

import sys

from mipcheck.cli import main

if __name__ == "__main__":
    sys.exit(main())
