"""Tracking plan (seed 003): projects, event catalog, fields, variables, relations, photos."""
