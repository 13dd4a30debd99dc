"""The fake kube-apiserver: the store (etcd), the registry (kube's generic registry and per-resource
strategies), subresources such as pods/eviction, and the HTTP server with its tables, auth and TLS.
Models are store/registry/objects/eviction; the wire is server/tables (moto's models/responses split)."""
