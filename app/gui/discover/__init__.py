"""The discover page."""
