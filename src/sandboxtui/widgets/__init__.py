"""Textual widgets, one per concern."""
