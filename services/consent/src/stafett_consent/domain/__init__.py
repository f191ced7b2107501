"""The pure domain of consent: the Consent aggregate, legal bases, and who may see a case;
decided on the facts the application looks up (`facts`).

Nothing here reads the clock, the network or the environment (docs/services.md).
"""
