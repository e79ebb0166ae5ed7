#!/usr/bin/env python3
"""A stand-in for the instance metadata services of AWS (IMDSv2), GCP and
Azure, and for ECS's task metadata endpoint, on 127.0.0.1, stdlib only.

Started by the tests as a child process:

    cloud_metadata_server.py [--hang]

prints one line "READY <port>" on stdout once it listens, and exits when its
standard input closes (so it never outlives the test that started it).

Each service answers only a request made as the real one wants it (method,
path, query and headers), with fixed metadata (IDENTITY, GCP_INSTANCE,
AZURE_COMPUTE, ECS_CONTAINER below); anything else gets 400 and is recorded
as an error. With --hang it accepts every metadata request and never
answers.

    PUT /latest/api/token                      X-aws-ec2-metadata-token-ttl-seconds
    GET /latest/dynamic/instance-identity/document   X-aws-ec2-metadata-token
    GET /latest/meta-data/instance-life-cycle        X-aws-ec2-metadata-token
    GET /computeMetadata/v1/instance/?recursive=true Metadata-Flavor: Google
    GET /metadata/instance/compute/?api-version=2019-08-15  Metadata: true
    GET /v4/container                          (ECS task metadata v4)

Control (never counted): GET /_requests -> JSON list of {method, path,
error} of every metadata request received so far (also those still
hanging).
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "AQAEAFake-imds-token=="
IDENTITY = {
    "accountId": "123456789012",
    "architecture": "x86_64",
    "availabilityZone": "eu-west-1b",
    "imageId": "ami-0abcdef1234567890",
    "instanceId": "i-0123456789abcdef0",
    "instanceType": "m5.large",
    "pendingTime": "2024-05-01T07:00:00Z",
    "privateIp": "10.0.0.12",
    "region": "eu-west-1",
    "version": "2017-09-30",
}
LIFE_CYCLE = "spot"
GCP_INSTANCE = {
    "id": 4520031799277581759,
    "name": "gke-node-1",
    "zone": "projects/123456789012/zones/us-central1-a",
    "machineType": "projects/123456789012/machineTypes/n2-standard-4",
    "image": "projects/cos-cloud/global/images/cos-101-17162-40-13",
    "preempted": "FALSE",
    "scheduling": {"automaticRestart": "FALSE", "onHostMaintenance": "TERMINATE",
                   "preemptible": "TRUE"},
    "attributes": {"startup-script": "#!/bin/sh\necho " + "x" * 70000},
}
AZURE_COMPUTE = {
    "location": "westeurope",
    "name": "vm-profiled-1",
    "resourceGroupName": "rg-profiling",
    "resourceId": "/subscriptions/8d10da13-8125-4ba9-a717-bf7490507b3d/resourceGroups/"
                  "rg-profiling/providers/Microsoft.Compute/virtualMachines/vm-profiled-1",
    "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
    "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
    "vmSize": "Standard_D2s_v3",
    "zone": "2",
    "storageProfile": {
        "imageReference": {"id": "", "offer": "0001-com-ubuntu-server-jammy",
                           "publisher": "canonical", "sku": "22_04-lts-gen2",
                           "version": "latest"},
        "osDisk": {"osType": "Linux"},
    },
}
ECS_CONTAINER = {
    "DockerId": "cd189a933e5849daa93386466019ab50-2495160603",
    "Name": "app",
    "ContainerARN": "arn:aws:ecs:us-west-2:111122223333:container/"
                    "05966557-f16c-49cb-9352-24b3a0dcd0e1",
}

RECORDS = []
LOCK = threading.Lock()
HANG = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def answer(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        """(status, body) of a metadata request, or an error text."""
        h = self.headers
        m, p = self.command, self.path
        if p == "/latest/api/token":
            if m != "PUT":
                return "token not asked with PUT"
            if h.get("X-aws-ec2-metadata-token-ttl-seconds") is None:
                return "token asked without X-aws-ec2-metadata-token-ttl-seconds"
            return 200, TOKEN
        if p.startswith("/latest/"):
            if m != "GET":
                return f"{p} not asked with GET"
            if h.get("X-aws-ec2-metadata-token") != TOKEN:
                return f"{p} asked without the IMDSv2 token"
            if p == "/latest/dynamic/instance-identity/document":
                return 200, json.dumps(IDENTITY)
            if p == "/latest/meta-data/instance-life-cycle":
                return 200, LIFE_CYCLE
            return f"unknown AWS path {p}"
        if p.startswith("/computeMetadata/"):
            if h.get("Metadata-Flavor") != "Google":
                return "GCP asked without Metadata-Flavor: Google"
            if p != "/computeMetadata/v1/instance/?recursive=true" or m != "GET":
                return f"unknown GCP request {m} {p}"
            return 200, json.dumps(GCP_INSTANCE)
        if p.startswith("/metadata/"):
            if h.get("Metadata") != "true":
                return "Azure asked without Metadata: true"
            if p != "/metadata/instance/compute/?api-version=2019-08-15" or m != "GET":
                return f"unknown Azure request {m} {p}"
            return 200, json.dumps(AZURE_COMPUTE)
        if p == "/v4/container" and m == "GET":
            return 200, json.dumps(ECS_CONTAINER)
        return f"unknown request {m} {p}"

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/_requests":
            with LOCK:
                self.answer(200, json.dumps(RECORDS))
            return
        result = self.route()
        record = {"method": self.command, "path": self.path,
                  "error": result if isinstance(result, str) else None}
        with LOCK:
            RECORDS.append(record)
        if HANG:
            while True:
                time.sleep(3600)
        if isinstance(result, str):
            self.answer(400, result, "text/plain")
        else:
            self.answer(result[0], result[1],
                        "text/plain" if self.path.startswith("/latest/") and
                        "document" not in self.path else "application/json")

    do_GET = handle_any
    do_PUT = handle_any
    do_POST = handle_any


def main():
    global HANG
    parser = argparse.ArgumentParser()
    parser.add_argument("--hang", action="store_true")
    HANG = parser.parse_args().hang
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)


if __name__ == "__main__":
    main()
