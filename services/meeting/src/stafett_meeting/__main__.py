"""`python -m stafett_meeting` runs the meeting service; `... openapi` prints its OpenAPI JSON."""

import sys

from stafett_meeting.main import main, openapi

if sys.argv[1:] == ["openapi"]:
    print(openapi())
else:
    main()
