"""``python -m desktop.selftest``: the same as ``python -m desktop --selftest``."""
import sys

from desktop.selftest.runner import main

sys.exit(main())
