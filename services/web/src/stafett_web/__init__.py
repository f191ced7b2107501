"""Stafett in a browser: the web app for case workers, leaders, guardians and auditors.

Server-rendered pages (Litestar, Jinja2, plain HTML forms; no script) that hold no data of their
own: they read through the services' APIs and write through them, as the signed-in person, with
the access token their OpenID Connect sign-in gave them. Which pages there are, and how it is
run: docs/web.md.
"""
