"""The Stafett meeting service.

Meetings of a case: scheduling, minutes, decisions, action items and feedback (DOMAIN.md).

Not built yet: the service's domain, application, policies and API arrive with their issue.
The package exists so that the workspace has its final shape and each service installs alone.
"""
