"""The Stafett notify service.

Tells the right people at the right time, over email or signed webhooks, without leaking anything
(DOMAIN.md rule 8): a reference and a link, never a child's name or the concern.
"""
