from __future__ import annotations

import sys

from optima_node.cli import main

sys.exit(main())
