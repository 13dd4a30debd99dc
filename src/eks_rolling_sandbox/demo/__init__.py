"""`eks-rolling demo`: the field-report roll end to end, with its Redis load and report."""
