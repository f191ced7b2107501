"""Stafett in a browser: the web app for case workers, leaders, guardians and auditors."""
