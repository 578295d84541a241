"""The local HTTP endpoint: ``create_app(services)`` and the thread that serves it."""
