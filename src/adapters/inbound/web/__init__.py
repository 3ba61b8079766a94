"""The web app for issuers, admins and traders, served by the service itself.

Plain ES modules and a stylesheet under ``static/``, with pinned npm libraries vendored under
``static/vendor/`` (see ``static/vendor/VENDOR.json``); nothing is built at run time and no
other origin is contacted: every answer carries a Content-Security-Policy of ``'self'`` only.
"""

from adapters.inbound.web.blueprint import STATIC_DIR, web

__all__ = ["STATIC_DIR", "web"]
