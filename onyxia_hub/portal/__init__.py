"""The portal: "My services", "My account", "My storage" and an admin view, as a hub service.

JupyterHub's home page lists named servers and nothing more, and `JupyterHub.extra_handlers`
is deprecated: pages of our own live in a service. The hub starts this one
(`python -m onyxia_hub.portal`), routes `/services/portal/` to it, and signs users in to it
through OAuth. It is one app on the service skeleton (`onyxia_hub.service`); its data is
the portal store (`onyxia_hub.db.portal`, `onyxia_hub.db.store`), since JupyterHub
rewrites auth_state at every login.

- `app`: `PortalApp`, its settings, start-up and routes;
- `handlers` (pages) and `api` (JSON), over `actions` (what it does for a caller);
- `views`: server models, quota gauges and share links as pages and the API show them;
- `storage`: My storage and fresh S3 credentials for running servers.

docs/portal.md describes the pages, the API, the scopes and the store.
"""
