"""The Stafett consent service: consent as structured data, and who may see a case because of it.

Who consented, to which services, for what, until when; withdrawals, expiry and legal bases
(DOMAIN.md rules 1-4). Other services ask it whether a service may see a case.
"""
