"""Developer scripts run from a source checkout (not part of the installed package)."""
