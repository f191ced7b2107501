"""Pure rules of notification: who is told what, for which event, and when a timer is due.

No clock, no network, no environment: the time, the directory's unit leaders and the settings
come in as arguments.
"""
