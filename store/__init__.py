"""Persistence: the schema, its migrations, sessions and every query."""
