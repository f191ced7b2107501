"""`python -m stafett_consent` runs the consent service; `... openapi` prints its OpenAPI."""

import sys

from stafett_consent.main import main, openapi

if sys.argv[1:] == ["openapi"]:
    sys.stdout.write(openapi())
else:
    main()
