"""``python -m actors``: look at a running system (see :mod:`actors.observe`)."""

import sys

from actors.observe._cli import main

if __name__ == "__main__":
    sys.exit(main())
