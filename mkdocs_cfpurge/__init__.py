"""Purge exactly what changed from Cloudflare's cache after an MkDocs (or any static) deploy."""

__version__ = "0.1.0"
