"""The Stafett consent service.

Consent as structured data: who consented, to which services, for what, until when (DOMAIN.md
rules 1-4).

Not built yet: the service's domain, application, policies and API arrive with their issue.
The package exists so that the workspace has its final shape and each service installs alone.
"""
