"""How people log in.

- `local`: accounts with passwords kept by the hub (the embedded default), built on
  NativeAuthenticator's account table with its gaps on JupyterHub 6 closed.
- `oidc`: an identity provider such as Keycloak through oauthenticator's
  GenericOAuthenticator (production), with endpoint discovery from the issuer URL.
"""
