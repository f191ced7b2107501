"""The notify test kit's fixtures (see `stafett_notify.testing`)."""

from stafett_notify.testing import env, envelope, register, smtp, upstreams

__all__ = ["env", "envelope", "register", "smtp", "upstreams"]
