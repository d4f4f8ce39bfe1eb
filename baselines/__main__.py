"""``python -m baselines``: see :mod:`baselines.cli`."""

import sys

from baselines.cli import main

sys.exit(main())
