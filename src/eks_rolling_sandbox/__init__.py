"""A local EKS sandbox: a Kubernetes API server the official client and kubectl accept, controllers
that behave like the real ones where eks-rolling depends on them, nodes backed by moto ASG
instances, and Redis pods that are real redis-server processes."""
