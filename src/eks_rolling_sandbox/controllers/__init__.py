"""Controllers that make the sandbox behave like a cluster: scheduler, kubelet, workload
controllers, disruption (PDB) controller, node lifecycle, PodGC, endpoints, garbage collector."""
