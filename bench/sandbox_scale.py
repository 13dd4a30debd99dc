"""Sandbox scale benchmark (not a test): how the store and controllers cope with benchmark-sized
clusters, compared as ratios within one run on this machine.

For each size it builds N Ready nodes and Deployments totalling P pods, and measures:
  - time until every pod is Ready (scheduler + kubelet + ReplicaSet work),
  - time to evict 10% of the pods and have every Deployment back at full strength,
  - the latency of a cluster-wide pod LIST and a field-selected LIST (spec.nodeName) through
    the official client.
Run: .venv/bin/python bench/sandbox_scale.py [--sizes 50x500,150x1500,300x3000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from kubernetes import client

from eks_rolling_sandbox import manifests as m
from eks_rolling_sandbox.api.objects import node_object, pod_is_ready
from eks_rolling_sandbox.controllers.base import Timings
from eks_rolling_sandbox.sandbox import Sandbox


def ready_nodes(sb: Sandbox, n: int) -> list[str]:
    names = []
    for k in range(1, n + 1):
        az = "us-east-1a" if k % 2 else "us-east-1b"
        node = node_object(
            f"ip-10-1-{k // 250}-{k % 250}.ec2.internal",
            instance_id=f"i-{k:017x}",
            az=az,
            region="us-east-1",
            instance_type="m5.large",
            index=k,
        )
        for c in node["status"]["conditions"]:
            if c["type"] == "Ready":
                c.update(status="True", reason="KubeletReady")
        node["spec"]["taints"] = []
        sb.store.create("nodes", node)
        names.append(node["metadata"]["name"])
    return names


def run(nodes: int, pods: int) -> dict[str, float]:
    sb = Sandbox(timings=Timings(pod_start_s=0.05, pod_ready_s=0.05, pod_exit_s=0.05)).start()
    try:
        ready_nodes(sb, nodes)
        deployments = max(pods // 50, 1)
        t0 = time.perf_counter()
        for d in range(deployments):
            sb.apply(m.deployment(f"app-{d}", "default", pods // deployments))
        total = (pods // deployments) * deployments
        sb.wait_for(
            lambda: sum(1 for p in sb.store.all("pods") if pod_is_ready(p)) == total,
            timeout=600,
            interval=0.2,
        )
        t_ready = time.perf_counter() - t0

        api = client.CoreV1Api(sb.client())
        lat_all, lat_node = [], []
        node_name = sb.store.all("nodes")[0]["metadata"]["name"]
        for _ in range(5):
            t = time.perf_counter()
            api.list_pod_for_all_namespaces(_preload_content=False).read()
            lat_all.append(time.perf_counter() - t)
            t = time.perf_counter()
            api.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node_name}")
            lat_node.append(time.perf_counter() - t)

        victims = sb.store.all("pods")[::10]
        t0 = time.perf_counter()
        for p in victims:
            sb.eviction.create(
                p["metadata"]["namespace"],
                p["metadata"]["name"],
                {"metadata": {"name": p["metadata"]["name"]}},
            )
        sb.wait_for(
            lambda: (
                sum(
                    1
                    for p in sb.store.all("pods")
                    if pod_is_ready(p) and "deletionTimestamp" not in p["metadata"]
                )
                == total
                and len(sb.store.all("pods")) == total
            ),
            timeout=600,
            interval=0.2,
        )
        t_recover = time.perf_counter() - t0
        return {
            "nodes": nodes,
            "pods": total,
            "all_ready_s": round(t_ready, 2),
            "ready_ms_per_pod": round(1000 * t_ready / total, 3),
            "evict_10pct_recover_s": round(t_recover, 2),
            "list_all_pods_ms": round(1000 * statistics.median(lat_all), 1),
            "list_pods_on_node_ms": round(1000 * statistics.median(lat_node), 1),
            "controller_errors": sb.manager.errors,
        }
    finally:
        sb.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50x500,150x1500,300x3000")
    args = parser.parse_args()
    rows = [run(*map(int, s.split("x"))) for s in args.sizes.split(",")]
    keys = list(rows[0])
    print(" ".join(f"{k:>22}" for k in keys))
    for r in rows:
        print(" ".join(f"{r[k]!s:>22}" for k in keys))
    base = rows[0]
    for r in rows[1:]:
        scale = r["pods"] / base["pods"]
        print(
            f"{r['nodes']}x{r['pods']} vs {base['nodes']}x{base['pods']}: pods x{scale:.1f}, time to all-Ready x{r['all_ready_s'] / base['all_ready_s']:.1f}, ms per pod x{r['ready_ms_per_pod'] / base['ready_ms_per_pod']:.2f}"
        )


if __name__ == "__main__":
    main()
