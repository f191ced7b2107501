"""`python -m stafett_notify` runs the notify service; `... openapi` prints its OpenAPI JSON."""

from stafett_notify.main import main

main()
