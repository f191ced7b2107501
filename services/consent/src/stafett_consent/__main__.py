"""`python -m stafett_consent` runs the consent service; `... openapi` prints its OpenAPI."""

import sys

from stafett_consent.main import main

sys.exit(main())
