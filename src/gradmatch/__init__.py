"""gradmatch: estimate implicit regularization by gradient matching (Rudoler et al., 2026)."""

__version__ = "0.1.0"
