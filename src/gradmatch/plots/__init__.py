"""gradmatch.plots."""
