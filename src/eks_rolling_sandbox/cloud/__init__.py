"""The AWS side of the sandbox: moto in server mode, and the bridge that turns its ASG instances into
Kubernetes Nodes as the AWS cloud controller manager and the kubelet's registration do."""
