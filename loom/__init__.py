"""Loom: an infrastructure-as-a-service compute controller."""

__version__ = "0.1.0"
