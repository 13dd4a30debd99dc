"""CPU and memory as the scheduler counts them: resource quantities, pod requests, and the
allocatable of EC2 instance types as an EKS node reports it.

Allocatable follows the EKS AMI's kubelet defaults (awslabs/amazon-eks-ami: AL2
`templates/al2/runtime/bootstrap.sh` get_cpu_millicores_to_reserve and
get_memory_mebibytes_to_reserve, carried into AL2023's nodeadm): kube-reserved memory is
11 MiB per pod the node may run plus 255 MiB, kube-reserved CPU is 6% of the first core, 1% of
the second, 0.5% of the third and fourth and 0.25% of every further core, and the eviction
threshold `memory.available<100Mi` is taken off memory too. Max pods per type come from the
AMI's `eni-max-pods.txt` (VPC CNI without prefix delegation: ENIs x (IPs per ENI - 1) + 2).
vCPUs and memory are the EC2 instance types' published sizes; a real kubelet reports a few
percent less memory capacity (what the kernel keeps), so real allocatable is a little lower."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MIB = 1024 * 1024
EVICTION_HARD_MEMORY_MIB = 100

# type: (vCPUs, memory MiB, max pods)
INSTANCE_TYPES: dict[str, tuple[int, int, int]] = {
    "t3.medium": (2, 4096, 17),
    "t3.large": (2, 8192, 35),
    "m5.large": (2, 8192, 29),
    "m5.xlarge": (4, 16384, 58),
    "m5.2xlarge": (8, 32768, 58),
    "m5.4xlarge": (16, 65536, 234),
    "m6i.large": (2, 8192, 29),
    "m6i.xlarge": (4, 16384, 58),
    "c5.large": (2, 4096, 29),
    "c5.xlarge": (4, 8192, 58),
    "r5.large": (2, 16384, 29),
    "r5.xlarge": (4, 32768, 58),
}

_BINARY = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(1000)}
_DECIMAL |= {"M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15)}
_DECIMAL |= {"E": Decimal(10**18)}


def quantity(value: str | int | float | None) -> Decimal:
    """A Kubernetes resource.Quantity ("250m", "1.5", "512Mi", "1G", "1e3") as a number."""
    if value is None:
        return Decimal(0)
    text = str(value).strip()
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return _number(text[: -len(suffix)], value) * factor
    if text and text[-1] in _DECIMAL and not text[-1].isdigit():
        return _number(text[:-1], value) * _DECIMAL[text[-1]]
    return _number(text, value)


def _number(text: str, original: object) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a resource quantity: {original!r}") from exc


def cpu_millis(value: str | int | float | None) -> int:
    """CPU in millicores, rounded up as the API server does ("0.1" -> 100, "1m" -> 1)."""
    q = quantity(value) * 1000
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: str | int | float | None) -> int:
    q = quantity(value)
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


@dataclass(frozen=True)
class Resources:
    """CPU (millicores) and memory (bytes): a pod's requests or a node's room."""

    cpu_m: int = 0
    memory: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_m + other.cpu_m, self.memory + other.memory)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu_m - other.cpu_m, self.memory - other.memory)

    def scaled(self, n: int) -> Resources:
        return Resources(self.cpu_m * n, self.memory * n)

    def fits_in(self, room: Resources) -> bool:
        return self.cpu_m <= room.cpu_m and self.memory <= room.memory

    def missing_from(self, room: Resources) -> Resources:
        """What `room` lacks to hold this (0 where it has enough)."""
        return Resources(max(0, self.cpu_m - room.cpu_m), max(0, self.memory - room.memory))

    def __str__(self) -> str:
        return f"{self.cpu_m}m cpu, {format_memory(self.memory)} memory"


def format_memory(n: int) -> str:
    if n % MIB == 0 or n >= 10 * MIB:
        return f"{-(-n // MIB)}Mi"
    return f"{n}"


def requests_of(containers: list[dict[str, object]] | None) -> Resources:
    """Sum of the containers' requests (a limit stands in for a missing request, as the API
    server's defaulting does). Init containers run before and are not counted here."""
    cpu = mem = 0
    for c in containers or []:
        res = c.get("resources") or {}
        assert isinstance(res, dict)
        req = res.get("requests") or res.get("limits") or {}
        lim = res.get("limits") or {}
        cpu += cpu_millis(req.get("cpu", lim.get("cpu")))
        mem += memory_bytes(req.get("memory", lim.get("memory")))
    return Resources(cpu, mem)


def reserved_cpu_millis(vcpus: int) -> int:
    """kube-reserved CPU of the EKS AMI: 6% of core 1, 1% of core 2, 0.5% of cores 3-4,
    0.25% of the rest."""
    millis = 0.0
    for core in range(1, vcpus + 1):
        millis += 60 if core == 1 else 10 if core == 2 else 5 if core <= 4 else 2.5
    return int(millis)


@dataclass(frozen=True)
class InstanceCapacity:
    instance_type: str
    capacity: Resources
    allocatable: Resources
    max_pods: int


def instance_capacity(instance_type: str) -> InstanceCapacity | None:
    """Capacity and allocatable of a known instance type; None for one not in the table."""
    row = INSTANCE_TYPES.get(instance_type)
    if row is None:
        return None
    vcpus, mem_mib, max_pods = row
    capacity = Resources(vcpus * 1000, mem_mib * MIB)
    reserved = Resources(reserved_cpu_millis(vcpus), (11 * max_pods + 255 + EVICTION_HARD_MEMORY_MIB) * MIB)
    return InstanceCapacity(instance_type, capacity, capacity - reserved, max_pods)
