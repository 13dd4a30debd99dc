"""Clients and monitors that measure a roll from outside the tool: bounded Redis writers, the
availability monitor on every store change, and the Redis Cluster and Sentinel reports."""
