"""Shared test helpers: a real hub process, a browser-like HTTP client, hostile inputs.

- `hub.HubProcess`: `onyxia-hub up` run as a subprocess on free ports and a temporary
  state directory, the same code path as the README's run command.
- `client.HubClient`: a requests session that signs in through the real login form
  (cookies and XSRF token), and calls the REST API with tokens.
"""
