"""The skeleton of every hub-managed service (the portal, the courses...).

- `app.ServiceApp`: configuration, start-up (keys, its own store, schema at head, catalog),
  the hub's OAuth, routes, exit when the hub is gone;
- `handlers`: HubOAuth-authenticated base handler, XSRF on every change, pages in the
  hub's layout, JSON API, errors without tracebacks;
- `hubapi.HubAPI`: the hub's REST API with the caller's token or the service's own;
- `templates/service-page.html`, `service-error.html`: what every page extends.

A service is a subclass of `ServiceApp` naming itself, its store's `Schema` (or None) and
its routes; tests/services/whoami.py is the smallest one. docs/architecture.md.
"""
