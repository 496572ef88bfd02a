"""gradmatch.core."""
