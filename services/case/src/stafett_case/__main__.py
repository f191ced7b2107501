"""`python -m stafett_case` runs the case service; `... openapi` prints its OpenAPI document."""

import sys

from stafett_case.main import main

sys.exit(main())
