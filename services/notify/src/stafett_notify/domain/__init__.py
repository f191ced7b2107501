"""Pure rules of notification: who is told what, for which event, and when a timer is due.

No clock, no network, no environment: the time, the settings, and the facts about people (the
register's guardians, the municipality directory's units and leaders) come in as arguments.
"""
