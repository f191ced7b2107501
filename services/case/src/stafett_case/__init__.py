"""The Stafett case service.

The relay log (stafettlogg): the Case aggregate, levels 0-3, measures, baton handovers (DOMAIN.md).

Not built yet: the service's domain, application, policies and API arrive with their issue.
The package exists so that the workspace has its final shape and each service installs alone.
"""
