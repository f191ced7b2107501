"""The Stafett notify service.

Notifications and reminders that tell the right people at the right time without leaking
anything (DOMAIN.md rule 8).

Not built yet: the service's domain, application, policies and API arrive with their issue.
The package exists so that the workspace has its final shape and each service installs alone.
"""
