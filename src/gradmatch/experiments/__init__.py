"""gradmatch.experiments."""
