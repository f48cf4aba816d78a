"""Loom's identity service: Keystone v3 compatible users, projects and tokens."""
