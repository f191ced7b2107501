"""`python -m stafett_meeting` runs the meeting service; `... openapi` prints its OpenAPI JSON."""

import sys

from stafett_meeting.main import main

sys.exit(main())
