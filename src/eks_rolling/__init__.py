"""eks-rolling: zero-downtime rolling replacement of self-managed EKS worker nodes."""

__version__ = "0.1.0"
