"""One module per disk-image format: how to read its header safely, and what makes it unsafe."""
