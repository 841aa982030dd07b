"""The operator console: HTML pages for the people who run the catalog (/console).

Server-rendered with Tornado templates (``templates/``), one stylesheet (``static/``), no
script: the stats chart is an SVG drawn here. Signing in goes through the same Accounts.login
as POST /auth/login, and every action through the same CatalogAdmin as /admin.
"""
