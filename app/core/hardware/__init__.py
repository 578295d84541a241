"""What the machine has: ``detect() -> HardwareProfile`` (probes) and planning profiles."""
