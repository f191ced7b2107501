"""The Stafett case service: the relay log (stafettlogg), one Case aggregate per child's case,
with its levels 0-3, measures, services taking part, and one baton holder at a time (DOMAIN.md).
"""
