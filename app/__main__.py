"""``python -m handpose.app``: the same as ``handpose-app``."""

import sys

from .main import main

sys.exit(main())
