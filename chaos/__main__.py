"""`python -m chaos` is `genchaos`."""

import sys

from chaos.cli import main

sys.exit(main())
