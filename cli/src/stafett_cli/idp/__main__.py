"""`python -m stafett_cli.idp` runs the development identity provider (settings: `settings`)."""

from stafett_cli.idp import main

main()
