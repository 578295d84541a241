"""Every GGUF Homefire knows, wherever it lives: its own downloads, the starter model, other tools'."""
