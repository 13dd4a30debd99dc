"""Lambda entry points, one module per Task state (see eks_rolling.steps)."""
