"""`python -m fcsoft` runs the command line (bin/fcsoft does this inside .venv)."""

import sys

from fcsoft.cli import main

sys.exit(main())
