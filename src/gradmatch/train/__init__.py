"""gradmatch.train."""
