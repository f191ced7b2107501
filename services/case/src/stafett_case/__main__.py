"""`python -m stafett_case` runs the case service."""

from stafett_case.main import main

main()
