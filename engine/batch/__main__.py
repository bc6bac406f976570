"""`python -m engine.batch`: see engine/batch/cli.py."""

import sys

from engine.batch.cli import main

sys.exit(main())
