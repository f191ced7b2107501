"""The pure domain of consent: the Consent aggregate, legal bases, and who may see a case.

Nothing here reads the clock, the network or the environment (docs/services.md).
"""
