"""Onyxia Hub's user-server side of S3 storage (see README.md)."""

__version__ = "0.1.0"
