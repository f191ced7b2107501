"""`python -m stafett_consent` runs the consent service."""

from stafett_consent.main import main

main()
