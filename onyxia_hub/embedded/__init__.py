"""The embedded default: a complete datalab on one machine, started by `onyxia-hub up`.

- `state`: the state directory (layout, permissions, the single-instance lock, ports).
- `secrets`: cookie secret, encryption key, proxy token, the admin's first password.
- `preflight`: checks that turn a busy port or a missing program into one clear message.
- `hubconfig`: the JupyterHub configuration for one machine, and its redacted rendering.
- `up`: ties them together and runs the hub until Ctrl-C or SIGTERM.
"""
