#!/usr/bin/env python3
"""Baseline for ds01-bench: one scan the way the incumbent's scanner does it, written for the
benchmark (not the incumbent's code): list every container, inspect each through the Docker
SDK for Python, read the GPU processes (nvidia-smi when present), write the inventory JSON.

usage: incumbent_scan.py OUTPUT.json [--every SECONDS --duration SECONDS]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import docker


def gpu_processes():
    if shutil.which("nvidia-smi") is None:
        return []
    output = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader"],
        capture_output=True, text=True, check=False,
    ).stdout
    return [line.split(", ") for line in output.splitlines() if line.strip()]


def scan(client, output):
    containers = {}
    for summary in client.containers.list(all=True):
        attributes = client.api.inspect_container(summary.id)
        labels = attributes["Config"].get("Labels") or {}
        host = attributes.get("HostConfig") or {}
        requests = host.get("DeviceRequests") or []
        containers[summary.id[:12]] = {
            "id": summary.id[:12],
            "name": attributes["Name"].lstrip("/"),
            "user": labels.get("ds01.user", "unknown"),
            "status": attributes["State"]["Status"],
            "image": attributes["Config"].get("Image"),
            "has_gpu": bool(requests) or "ds01.gpu.uuid" in labels,
            "labels": labels,
            "started_at": attributes["State"].get("StartedAt"),
        }
    inventory = {
        "last_scan": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "containers": containers,
        "host_processes": {str(entry[0]): entry for entry in gpu_processes()},
    }
    directory = os.path.dirname(os.path.abspath(output))
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False) as handle:
        json.dump(inventory, handle, indent=2)
        temporary = handle.name
    os.replace(temporary, output)


def main():
    output = sys.argv[1]
    every = float(sys.argv[sys.argv.index("--every") + 1]) if "--every" in sys.argv else None
    duration = float(sys.argv[sys.argv.index("--duration") + 1]) if "--duration" in sys.argv else 0
    client = docker.from_env()
    started = time.monotonic()
    while True:
        scan(client, output)
        if every is None or time.monotonic() - started + every > duration:
            break
        time.sleep(every)


if __name__ == "__main__":
    main()
