"""`python -m stafett_web` runs the web app; see main.py."""

import sys

from stafett_web.main import main

sys.exit(main())
