"""The desktop app: the only package that imports PySide6; thin views over the core services."""
