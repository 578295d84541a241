"""The local HTTP endpoint: ``create_app(engine, config)`` and the thread that serves it."""
