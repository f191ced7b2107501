"""The Stafett projection service.

Read models, access log, audit replay and the query API (DOMAIN.md read models).

Not built yet: the service's domain, application, policies and API arrive with their issue.
The package exists so that the workspace has its final shape and each service installs alone.
"""
