"""gradmatch.data."""
