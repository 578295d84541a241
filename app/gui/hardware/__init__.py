"""The hardware page."""
