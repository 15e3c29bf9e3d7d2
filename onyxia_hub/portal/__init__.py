"""The portal: "My services", "My account" and an admin view, as a hub-managed service.

JupyterHub's home page lists named servers and nothing more, and `JupyterHub.extra_handlers`
is deprecated: pages of our own live in a service. The hub starts this one
(`python -m onyxia_hub.portal`), routes `/services/portal/` to it, and signs users in to it
through OAuth; it keeps per-user settings (git identity, saved launch configurations) in a
store of its own, since JupyterHub rewrites auth_state at every login.

- `app`: `PortalApp`, the traitlets application (configuration, start-up, routes);
- `handlers` (pages) and `api` (JSON), over `base` (authentication, XSRF, errors);
- `hubapi`: the hub's REST API, with the caller's token or the service's own;
- `views`: server models, quota gauges and share links as pages and the API show them;
- `store` (tables, queries), `crypto` (secret fields), `migrations/` (alembic);
- `validate`: every field users send, checked, with messages naming the field.

docs/portal.md describes the pages, the API, the scopes and the store.
"""
