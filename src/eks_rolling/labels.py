"""Well-known label, annotation, taint and tag keys, and the Redis ports: each spelled once, here.

Like k8s.io/api/core/v1 well_known_labels.go / well_known_taints.go and karpenter's
pkg/apis/v1/labels.go: the runtime, the sandbox and the tests import these names instead of
repeating the strings (a copy drifts: kube's own discovery/v1beta1 conversion once carried a
`FIXME: core/v1.LabelTopologyZone exists`). Upstream keys keep upstream's names. Pure: no imports.
"""

from __future__ import annotations

# --- Kubernetes (k8s.io/api/core/v1) ----------------------------------------------------------
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_TOPOLOGY_ZONE = "topology.kubernetes.io/zone"
LABEL_TOPOLOGY_REGION = "topology.kubernetes.io/region"
LABEL_FAILURE_DOMAIN_BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"  # deprecated, still honoured
LABEL_INSTANCE_TYPE_STABLE = "node.kubernetes.io/instance-type"
LABEL_OS_STABLE = "kubernetes.io/os"
LABEL_ARCH_STABLE = "kubernetes.io/arch"
# LabelNodeExcludeBalancers: the AWS load balancer controllers stop sending traffic to the node.
EXCLUDE_FROM_EXTERNAL_LB = "node.kubernetes.io/exclude-from-external-load-balancers"
# The kubelet's static-pod mirror annotation (ConfigMirrorAnnotationKey): such pods are never evicted.
CONFIG_MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TAINT_NODE_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_NODE_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_NODE_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_NODE_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_NODE_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
# aws-ebs-csi-driver: the zone key in the node affinity of the volumes it provisions.
LABEL_EBS_CSI_ZONE = "topology.ebs.csi.aws.com/zone"

# AWS Load Balancer Controller's Service annotations (the sandbox's load balancers read them).
AWS_LB_PREFIX = "service.beta.kubernetes.io/aws-load-balancer-"
AWS_LB_TARGET_TYPE = AWS_LB_PREFIX + "nlb-target-type"  # "instance" or "ip"
AWS_LB_HC_INTERVAL = AWS_LB_PREFIX + "healthcheck-interval"
AWS_LB_HC_TIMEOUT = AWS_LB_PREFIX + "healthcheck-timeout"
AWS_LB_HC_HEALTHY = AWS_LB_PREFIX + "healthcheck-healthy-threshold"
AWS_LB_HC_UNHEALTHY = AWS_LB_PREFIX + "healthcheck-unhealthy-threshold"
AWS_LB_TG_ATTRIBUTES = AWS_LB_PREFIX + "target-group-attributes"  # "k=v,k=v"
AWS_LB_DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"  # a target group attribute

# --- eks-rolling: what users set, and what the tool writes ------------------------------------
TAG_OPT_IN = "eks-rolling/enabled"  # an ASG tag (value "true"), not a Kubernetes label
TAINT_RETIRING = "eks-rolling.io/retiring"  # the default taint key on old nodes
LABEL_RUN = "eks-rolling.io/run"  # on what a run creates (temporary Redis pods)
# Scope: a node carrying this label or annotation ("true") is never part of a roll.
EXCLUDE_NODE = "eks-rolling.io/exclude"
# Do-not-disrupt: pods annotated "true" with either key are never evicted; their node waits until
# they finish or their deadline (a duration from the drain's start, or an RFC 3339 time) passes.
DO_NOT_DISRUPT = "eks-rolling.io/do-not-disrupt"
KARPENTER_DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"  # what Karpenter users already set
DO_NOT_DISRUPT_DEADLINE = "eks-rolling.io/do-not-disrupt-deadline"
# Per-ASG overrides of the scope and sequencing settings (ASG tags, like TAG_OPT_IN).
TAG_NODE_SELECTOR = "eks-rolling/node-selector"  # a label selector, kubectl syntax
TAG_INSTANCE_IDS = "eks-rolling/instance-ids"  # comma- or space-separated
TAG_EXCLUDE_SELECTOR = "eks-rolling/exclude-selector"  # a label selector, kubectl syntax
TAG_AZ_SEQUENTIAL = "eks-rolling/az-sequential"  # "true": finish one AZ before the next
# Maintenance windows (planning/windows.py syntax) and the operator's pause/abort for the console.
TAG_MAINTENANCE_WINDOWS = "eks-rolling/maintenance-windows"
TAG_CONTROL = "eks-rolling/control"  # "pause" or "abort"; remove it (or "resume") to go on
# Per-node hooks (Lambda ARNs or https:// URLs, comma-separated): they replace the settings'.
TAG_PRE_DRAIN_HOOKS = "eks-rolling/pre-drain-hooks"
TAG_POST_REPLACE_HOOKS = "eks-rolling/post-replace-hooks"
# The canary wave and the health gate after every wave (they replace the settings').
TAG_CANARY_PER_AZ = "eks-rolling/canary-per-az"  # old nodes per AZ in the first wave; 0: no canary
TAG_HEALTH_ALARMS = "eks-rolling/health-alarms"  # CloudWatch alarm names, comma-separated

# Annotations on a Redis group's StatefulSets (eks_rolling.redis.discovery reads them).
REDIS_PREFIX = "eks-rolling.io/redis-"
REDIS_GROUP = REDIS_PREFIX + "group"
REDIS_KIND = REDIS_PREFIX + "kind"
REDIS_ROLE = REDIS_PREFIX + "role"
REDIS_MASTER_SET = REDIS_PREFIX + "master-set"
REDIS_PASSWORD_SECRET = REDIS_PREFIX + "password-secret"
REDIS_PASSWORD_SECRETSMANAGER = REDIS_PREFIX + "password-secretsmanager"
REDIS_TLS = REDIS_PREFIX + "tls"
REDIS_TLS_CA_SECRET = REDIS_PREFIX + "tls-ca-secret"
# Set by the sandbox's charts for their own wiring; the tool does not read them.
REDIS_SENTINEL_STATEFULSET = REDIS_PREFIX + "sentinel-statefulset"
REDIS_SENTINEL_PASSWORD_SECRET = REDIS_PREFIX + "sentinel-password-secret"
REDIS_ZONE = REDIS_PREFIX + "zone"
# Written by the procedures: a replica's priority before the Sentinel switchover steered it, and
# a temporary Redis Cluster node's label and annotations.
REDIS_ORIGINAL_REPLICA_PRIORITY = REDIS_PREFIX + "original-replica-priority"
REDIS_TEMP_FOR = REDIS_PREFIX + "temp-for"
REDIS_TEMP_FOR_POD = REDIS_PREFIX + "temp-for-pod"
REDIS_TEMP_FOR_NODE_ID = REDIS_PREFIX + "temp-for-node-id"
REDIS_TEMP_SLOTS = REDIS_PREFIX + "temp-slots"

# --- ports ---------------------------------------------------------------------------------------
REDIS_PORT = 6379
REDIS_CLUSTER_BUS_PORT = REDIS_PORT + 10000  # Redis Cluster's bus: always the data port + 10000
SENTINEL_PORT = 26379
