"""Tools above the experiments: aggregation of chunk tables, config checks, claims, report."""
