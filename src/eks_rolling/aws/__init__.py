"""AWS adapters: the only runtime modules that import boto3/botocore.

Clients are created at call time from `Settings` (`clients.aws_client`), so the sandbox points
them at moto with `EKS_ROLLING_AWS_ENDPOINT_URL` and Lambda at the real endpoints.
"""
