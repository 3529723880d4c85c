"""``python -m poisonguard``."""

import sys

from poisonguard.cli import main

sys.exit(main())
