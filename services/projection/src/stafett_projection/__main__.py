"""`python -m stafett_projection` runs the projection service; see main.py for its commands."""

import sys

from stafett_projection.main import main

sys.exit(main())
