"""Fixtures for every test in the workspace."""

pytest_plugins = ["stafett_runtime.testing"]
