"""The Stafett projection service.

Read models of every service's stream, the access log, audit replay and the query API
(DOMAIN.md, "Read models that people use"); docs/projection.md describes it. Who may see what of
a case is decided by the one access rule (`stafett_contracts.access`) through the runtime's read
gate, over the case folded from its entries here.
"""
