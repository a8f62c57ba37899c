"""`python -m lsr.cli ...` runs the `lsr` command."""

import sys

from lsr.cli.main import main

sys.exit(main())
