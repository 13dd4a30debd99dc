"""Adapter over the official kubernetes client. The only package that imports `kubernetes`."""

from .ops import EvictionOutcome, KubeOps, kube_ops

__all__ = ["EvictionOutcome", "KubeOps", "kube_ops"]
