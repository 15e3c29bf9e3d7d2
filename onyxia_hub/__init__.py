"""Onyxia Hub: a self-service datalab built from JupyterHub's own parts.

The flow of a launch, whatever asked for it::

    catalog (profiles/*.yaml) -> checked choice -> launch plan -> spawner adapter

See README.md for the two commands that run it and test it.
"""

__version__ = "0.1.0"
