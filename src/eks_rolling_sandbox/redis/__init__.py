"""Redis pods as real redis-server processes: the processes themselves, the kubelet runtime that
backs pods with them, and Sentinel and Cluster manifests shaped like the production charts."""
