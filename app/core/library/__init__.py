"""Every GGUF Homefire knows: its own downloads, the starter model, other tools' files."""
