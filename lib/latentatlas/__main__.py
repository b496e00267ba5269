"""``python -m latentatlas``: the same as the ``latentatlas`` command."""

import sys

from .cli import main

sys.exit(main())
