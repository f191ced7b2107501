"""`python -m stafett_notify` runs the notify service; `... openapi` prints its OpenAPI JSON."""

import sys

from stafett_notify.main import main

sys.exit(main())
