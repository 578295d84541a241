"""The model pool: several loaded models at once, loaded on request, kept alive, evicted by memory."""
