#!/usr/bin/env python3
"""A test backend for gprofiler-agent's uploader: gProfiler Performance Studio
and Pyroscope's ingest, on 127.0.0.1, stdlib only.

It checks every header, query field and the gzip JSON body of gProfiler's
upload protocol, hands out gpids, records every request with the identity of
its TCP connection (to prove keep-alive reuse), and can be told to fail.

Started by the tests as a child process:

    server.py --token T --service S

prints one line "READY <data port> <control port>" on stdout once both
listen, and exits when its standard input closes (so it never outlives the
test that started it).

Data port (what the agent talks to):
    GET  /api/v1/health_check   -> {"message": "ok"}
    POST /api/v2/profiles       -> {"message": "ok", "gpid": N}
    POST /ingest                -> Pyroscope ingest (folded)
    POST /api/metrics/heartbeat -> the control plane (--enable-heartbeat-server):
                                   {"success": true, "message": ...,
                                   "profiling_command": {"command_type",
                                   "combined_config"}, "command_id"} when a
                                   command waits for the host, else
                                   {"success": true, "message": ...}
    POST /api/metrics/command_completion -> {"success": true, "message": ...}

The control plane follows Performance Studio's backend (its
metrics_routes.py and profiling_db_methods.py): both endpoints want
"Authorization: Bearer <token>" (401 otherwise, echoing the token sent) and
JSON with gProfiler's fields (422 listing what is wrong otherwise). A host
has one current command (Studio's ProfilingCommands table is unique per host
and service: a newer command replaces the older). It is "pending" until a
heartbeat from the host takes it, then "sent": it is handed out once, and
never to a heartbeat whose last_command_id is its id (Studio's
exclude_command_id). Queuing the same command id again makes it pending
again, and a command queued with "deliver": "always" is handed out in every
heartbeat (still not to its last_command_id): stand-ins for a backend that
hands a command out twice (its answer lost on the way, its "sent" mark
failed), for tests of the agent's deduplication by id. A completion is accepted
only for a command handed out to that host (Studio checks its execution
record): 404 otherwise.
    POST /api/v1/logs           -> a batch of the agent's logs (glogger's
                                   protocol), kept as the record's
                                   "logs_batch"

Control port (what the test talks to):
    GET  /requests              -> every recorded request, JSON list
    POST /faults   ["500", ...] -> the next profile uploads fail so, in order:
                                   "500", "400" (echoes the key), "413",
                                   "slow" (answers after slow_seconds),
                                   "reset" (TCP RST, no answer),
                                   "deep" (200 whose JSON nests 200,000
                                   levels), "deep500" (500, likewise)
    POST /config   {...}        -> max_body (bytes; larger bodies get 413),
                                   slow_seconds, latency (seconds every
                                   profile upload waits before its answer),
                                   logs_status (the status /api/v1/logs
                                   answers sound batches with; 200)
    POST /down                  -> stop listening, cut open connections
    POST /up                    -> listen again on the same port
    POST /clear                 -> forget the recorded requests
    POST /commands {...}        -> queues a command: {"command_id"?
                                   (made up if absent), "command_type",
                                   "combined_config", "hostname"? (absent:
                                   any host), "deliver"?: "once"|"always"};
                                   answers {"command_id": ...}
    GET  /heartbeats            -> the heartbeats received (JSON bodies)
    GET  /completions           -> the completions received (JSON bodies)
    POST /control_faults [...]  -> the next heartbeats and completions fail
                                   so, in order: "500", "garbage" (200, not
                                   JSON), "deep" (200, JSON nested 200,000
                                   levels), "reset" (TCP RST, no answer),
                                   "slow" (no answer for slow_seconds, then
                                   the connection closes)
"""

import argparse
import collections
import gzip
import json
import os
import re
import socket
import struct
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
FOLDED_LINE = re.compile(r"^[^ #].* \d+$")
LOGS_KEYS = {"batch_id", "metadata", "lost_logs_count", "logs"}
HEX32 = re.compile(r"^[0-9a-f]{32}$")
BODY_KEYS = {
    "start_time",
    "end_time",
    "hostname",
    "profile",
    "cpu_avg",
    "mem_avg",
    "spawn_time",
    "gpid",
}
HEARTBEAT_KEYS = {
    "ip_address",
    "hostname",
    "service_name",
    "last_command_id",
    "status",
    "timestamp",
    "received_command_ids",
    "executed_command_ids",
}
COMPLETION_KEYS = {
    "command_id",
    "hostname",
    "status",
    "execution_time",
    "error_message",
    "results_path",
}


class State:
    def __init__(self, token, service):
        self.lock = threading.Lock()
        self.token = token
        self.service = service
        self.records = []
        self.faults = collections.deque()
        self.max_body = 4 * 1024 * 1024
        self.slow_seconds = 3.0
        self.latency = 0.0
        self.logs_status = 200
        self.next_conn = 1
        self.next_gpid = 1000
        self.gpids = set()
        self.connections = set()
        # The control plane: the current command per host ("" for any
        # host), what was handed out, and what the agents said.
        self.commands = {}
        self.next_command = 0
        self.handed_out = set()
        self.heartbeats = []
        self.completions = []
        self.control_faults = collections.deque()

    def new_connection(self, sock):
        with self.lock:
            conn = self.next_conn
            self.next_conn += 1
            self.connections.add(sock)
            return conn

    def record(self, rec):
        with self.lock:
            rec["seq"] = len(self.records) + 1
            self.records.append(rec)

    def pop_fault(self):
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def new_gpid(self):
        with self.lock:
            self.next_gpid += 1
            self.gpids.add(self.next_gpid)
            return self.next_gpid


STATE = None


def single_query(query, errors):
    parsed = parse_qs(query, keep_blank_values=True)
    result = {}
    for name, values in parsed.items():
        if len(values) != 1:
            errors.append(f"query parameter {name!r} given {len(values)} times")
        result[name] = values[-1]
    return result


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class DataHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.conn_id = STATE.new_connection(self.connection)

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass  # the connection was reset on purpose, or by the client
        finally:
            with STATE.lock:
                STATE.connections.discard(self.connection)

    def log_message(self, fmt, *args):
        pass

    # -- helpers -------------------------------------------------------------

    def reply(self, status, obj):
        self.reply_raw(status, json.dumps(obj).encode())

    def reply_raw(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def read_body(self, errors):
        length = self.headers.get("Content-Length")
        if length is None:
            errors.append("no Content-Length header")
            self.close_connection = True
            return b""
        try:
            n = int(length)
        except ValueError:
            errors.append(f"bad Content-Length {length!r}")
            self.close_connection = True
            return b""
        data = self.rfile.read(n)
        if len(data) != n:
            errors.append(f"body has {len(data)} bytes, Content-Length says {n}")
        return data

    def base_record(self):
        url = urlsplit(self.path)
        errors = []
        return (
            {
                "conn": self.conn_id,
                "method": self.command,
                "path": url.path,
                "query": single_query(url.query, errors),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "errors": errors,
                "fault": None,
                "status": 0,
                "answered": False,
            },
            errors,
        )

    def check_auth(self, rec, errors, with_version):
        q = rec["query"]
        h = rec["headers"]
        names = ["key", "service", "hostname", "timestamp"]
        if with_version:
            names.append("version")
        for name in names:
            if name not in q:
                errors.append(f"query parameter {name!r} missing")
        if q.get("key") != STATE.token:
            errors.append("query parameter 'key' is not the token")
        if q.get("service") != STATE.service:
            errors.append("query parameter 'service' is not the service name")
        if not q.get("hostname"):
            errors.append("query parameter 'hostname' is empty")
        if not ISO_TIME.match(q.get("timestamp", "")):
            errors.append(f"timestamp {q.get('timestamp')!r} is not ISO 8601")
        if with_version and not q.get("version"):
            errors.append("query parameter 'version' is empty")
        if h.get("gprofiler-api-key") != STATE.token:
            errors.append("header GPROFILER-API-KEY is not the token")
        if h.get("gprofiler-service-name") != STATE.service:
            errors.append("header GPROFILER-SERVICE-NAME is not the service name")

    # -- routes --------------------------------------------------------------

    def do_GET(self):
        rec, errors = self.base_record()
        if rec["path"] != "/api/v1/health_check":
            rec["status"] = 404
            STATE.record(rec)
            self.reply(404, {"message": "not found"})
            return
        self.check_auth(rec, errors, with_version=False)
        rec["status"] = 400 if errors else 200
        rec["answered"] = True
        STATE.record(rec)
        self.reply(rec["status"], {"message": "; ".join(errors) or "ok"})

    def do_POST(self):
        rec, errors = self.base_record()
        body = self.read_body(errors)
        rec["body_bytes"] = len(body)
        rec["received_at"] = time.time()
        if rec["path"] == "/api/v2/profiles":
            self.profiles(rec, errors, body)
        elif rec["path"] == "/ingest":
            self.ingest(rec, errors, body)
        elif rec["path"] == "/api/metrics/heartbeat":
            self.heartbeat(rec, errors, body)
        elif rec["path"] == "/api/metrics/command_completion":
            self.command_completion(rec, errors, body)
        elif rec["path"] == "/api/v1/logs":
            self.logs(rec, errors, body)
        else:
            rec["status"] = 404
            STATE.record(rec)
            self.reply(404, {"message": "not found"})

    # -- the control plane (--enable-heartbeat-server) ---------------------

    def reset_connection(self):
        """Ends the connection with a TCP RST, no answer."""
        # SO_LINGER with a zero timeout: close() sends a RST.
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.close_connection = True
        self.connection.close()

    def control_plane_fault(self, rec):
        """Applies the next control-plane fault, if any; True if it answered."""
        with STATE.lock:
            fault = STATE.control_faults.popleft() if STATE.control_faults else None
        rec["fault"] = fault
        if fault is None:
            return False
        if fault == "reset":
            STATE.record(rec)
            self.reset_connection()
            return True
        if fault == "slow":
            STATE.record(rec)
            time.sleep(STATE.slow_seconds)
            self.close_connection = True
            return True
        rec["status"] = 500 if fault == "500" else 200
        STATE.record(rec)
        if fault == "500":
            self.reply(500, {"detail": "Internal server error (injected)"})
        elif fault == "garbage":
            self.reply_raw(200, b"<html>502 Bad Gateway</html>")
        else:  # "deep"
            depth = 200000
            self.reply_raw(200, b'{"success": true, "x": ' + b"[" * depth
                           + b"]" * depth + b"}")
        return True

    def control_plane_json(self, rec, errors, body, keys):
        """The JSON body of a control-plane request, after the checks every
        such request gets (token, content type, exactly `keys`); None if it
        was answered already (401)."""
        h = rec["headers"]
        if h.get("authorization") != f"Bearer {STATE.token}":
            rec["status"] = 401
            STATE.record(rec)
            # Servers echo what they refuse: the client must not log it.
            self.reply(401, {"detail": f"Invalid token {h.get('authorization')!r}"})
            return None
        if h.get("content-type") != "application/json":
            errors.append("Content-Type is not application/json")
        try:
            doc = json.loads(body.decode("utf-8"))
        except ValueError as ex:
            errors.append(f"body is not JSON: {ex}")
            return {}
        if not isinstance(doc, dict):
            errors.append("body is not a JSON object")
            return {}
        if set(doc) != keys:
            errors.append(f"body keys {sorted(doc)} are not {sorted(keys)}")
        rec["body"] = doc
        return doc

    def control_plane_refuse(self, rec, errors):
        """Answers 422 with `errors` (FastAPI's status for a bad body)."""
        rec["status"] = 422
        rec["answered"] = True
        STATE.record(rec)
        self.reply(422, {"detail": errors})

    def heartbeat(self, rec, errors, body):
        if self.control_plane_fault(rec):
            return
        doc = self.control_plane_json(rec, errors, body, HEARTBEAT_KEYS)
        if doc is None:
            return
        for name in ("ip_address", "hostname", "service_name"):
            if not isinstance(doc.get(name), str) or not doc.get(name):
                errors.append(f"{name} is not a non-empty string")
        if doc.get("service_name") != STATE.service:
            errors.append("service_name is not the service name")
        last = doc.get("last_command_id")
        if last is not None and not isinstance(last, str):
            errors.append("last_command_id is neither a string nor null")
        if doc.get("status") != "active":
            errors.append(f"status {doc.get('status')!r} is not 'active'")
        try:
            datetime.fromisoformat(str(doc.get("timestamp")))
        except ValueError:
            errors.append(f"timestamp {doc.get('timestamp')!r} is not ISO 8601")
        for name in ("received_command_ids", "executed_command_ids"):
            ids = doc.get(name)
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                errors.append(f"{name} is not a list of strings")
        if errors:
            self.control_plane_refuse(rec, errors)
            return
        host = doc["hostname"]
        answer = {"success": True,
                  "message": "Heartbeat received. No pending profiling commands."}
        with STATE.lock:
            STATE.heartbeats.append(doc)
            candidates = [c for c in (STATE.commands.get(host), STATE.commands.get(""))
                          if c is not None]
            cmd = max(candidates, key=lambda c: c["seq"]) if candidates else None
            if (cmd is not None and cmd["command_id"] != last
                    and (cmd["deliver"] == "always" or host not in cmd["sent_to"])):
                cmd["sent_to"].add(host)
                STATE.handed_out.add((cmd["command_id"], host))
                answer = {
                    "success": True,
                    "message": "Heartbeat received. New profiling command available.",
                    "profiling_command": {
                        "command_type": cmd["command_type"],
                        "combined_config": cmd["combined_config"],
                    },
                    "command_id": cmd["command_id"],
                }
                rec["command_id"] = cmd["command_id"]
        rec["status"] = 200
        rec["answered"] = True
        STATE.record(rec)
        self.reply(200, answer)

    def command_completion(self, rec, errors, body):
        if self.control_plane_fault(rec):
            return
        doc = self.control_plane_json(rec, errors, body, COMPLETION_KEYS)
        if doc is None:
            return
        for name in ("command_id", "hostname"):
            if not isinstance(doc.get(name), str) or not doc.get(name):
                errors.append(f"{name} is not a non-empty string")
        if doc.get("status") not in ("completed", "failed"):
            errors.append(f"status {doc.get('status')!r} is neither 'completed' nor 'failed'")
        t = doc.get("execution_time")
        if t is not None and (not isinstance(t, int) or isinstance(t, bool) or t < 0):
            errors.append("execution_time is neither a whole number >= 0 nor null")
        for name in ("error_message", "results_path"):
            if doc.get(name) is not None and not isinstance(doc.get(name), str):
                errors.append(f"{name} is neither a string nor null")
        if errors:
            self.control_plane_refuse(rec, errors)
            return
        key = (doc["command_id"], doc["hostname"])
        with STATE.lock:
            known = key in STATE.handed_out
            if known:
                STATE.completions.append(doc)
        if not known:
            rec["status"] = 404
            STATE.record(rec)
            self.reply(404, {"detail": f"Command {key[0]} not found for host {key[1]}"})
            return
        rec["status"] = 200
        rec["answered"] = True
        STATE.record(rec)
        self.reply(200, {"success": True,
                         "message": f"Command completion recorded for {key[0]}"})

    def profiles(self, rec, errors, body):
        fault = STATE.pop_fault()
        rec["fault"] = fault
        if fault == "reset":
            STATE.record(rec)
            self.reset_connection()
            return
        if fault in ("deep", "deep500"):
            # A hostile answer: JSON nested deeper than a recursive parser's
            # stack holds (json.dumps could not even write it).
            depth = 200000
            status = 200 if fault == "deep" else 500
            rec["status"] = status
            STATE.record(rec)
            self.reply_raw(status, b'{"message": "ok", "gpid": 7, "x": '
                           + b"[" * depth + b"]" * depth + b"}")
            return
        if fault == "slow":
            STATE.record(rec)
            time.sleep(STATE.slow_seconds)
            try:
                self.reply(200, {"message": "ok", "gpid": 1})
            except OSError:
                pass
            self.close_connection = True
            return
        if fault == "500":
            rec["status"] = 500
            STATE.record(rec)
            self.reply(500, {"message": "internal error (injected)"})
            return
        if fault == "400":
            rec["status"] = 400
            STATE.record(rec)
            # Servers echo what they refuse: the client must not log it.
            self.reply(400, {"message": f"invalid key {STATE.token}"})
            return
        if fault == "413" or len(body) > STATE.max_body:
            rec["status"] = 413
            STATE.record(rec)
            self.reply(413, {"message": "request entity too large"})
            return

        self.check_auth(rec, errors, with_version=True)
        h = rec["headers"]
        if h.get("content-encoding") != "gzip":
            errors.append("Content-Encoding is not gzip")
        if h.get("content-type") != "application/json":
            errors.append("Content-Type is not application/json")
        doc = None
        try:
            doc = json.loads(gzip.decompress(body).decode("utf-8"))
        except Exception as ex:  # noqa: BLE001 - any failure is a finding
            errors.append(f"body is not gzip JSON: {ex}")
        gpid_out = None
        if isinstance(doc, dict):
            keys = set(doc)
            if keys != BODY_KEYS:
                errors.append(
                    f"body keys {sorted(keys)} are not {sorted(BODY_KEYS)}"
                )
            for name in ("start_time", "end_time", "spawn_time"):
                if not ISO_TIME.match(str(doc.get(name, ""))):
                    errors.append(f"{name} {doc.get(name)!r} is not ISO 8601")
            if doc.get("hostname") != rec["query"].get("hostname"):
                errors.append("body hostname differs from the query's")
            for name in ("cpu_avg", "mem_avg"):
                # null: no reading (gProfiler's --disable-metrics-collection)
                if doc.get(name) is not None and not is_number(doc.get(name)):
                    errors.append(f"{name} is not a number or null")
            prof = doc.get("profile")
            if not isinstance(prof, str) or not prof.startswith("#"):
                errors.append("profile is not a .col text with a '#' header")
            else:
                try:
                    json.loads(prof.split("\n", 1)[0][1:])
                except ValueError:
                    errors.append("profile header line is not JSON")
            gpid = doc.get("gpid")
            rec["gpid_in"] = gpid
            if gpid in ("", None):
                gpid_out = STATE.new_gpid()
            else:
                try:
                    gpid_out = int(gpid)
                except (TypeError, ValueError):
                    errors.append(f"gpid {gpid!r} is not a number")
                else:
                    if gpid_out not in STATE.gpids:
                        errors.append(f"gpid {gpid_out} was never issued")
            rec["body"] = doc
        elif doc is not None:
            errors.append("body is not a JSON object")
        if errors:
            rec["status"] = 400
            rec["answered"] = True
            STATE.record(rec)
            self.reply(400, {"message": "; ".join(errors)})
            return
        if STATE.latency > 0:
            time.sleep(STATE.latency)
        # Like a backend that stores a profile as part of answering: a
        # client that went away meanwhile (killed) gets no answer, and its
        # profile is not stored.
        if self.client_gone():
            rec["status"] = 0
            rec["fault"] = "aborted"
            STATE.record(rec)
            self.close_connection = True
            return
        rec["status"] = 200
        rec["answered"] = True
        rec["gpid_out"] = gpid_out
        self.reply(200, {"message": "ok", "gpid": gpid_out})
        rec["answered_at"] = time.time()
        STATE.record(rec)

    def client_gone(self):
        """Whether the client closed its end (EOF or reset) while we worked."""
        try:
            self.connection.setblocking(False)
            try:
                data = self.connection.recv(1, socket.MSG_PEEK)
            finally:
                self.connection.setblocking(True)
            return data == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def ingest(self, rec, errors, body):
        q = rec["query"]
        if not q.get("name"):
            errors.append("query parameter 'name' missing")
        try:
            start, until = int(q.get("from", "")), int(q.get("until", ""))
            if start > until:
                errors.append("from is after until")
        except ValueError:
            errors.append("from/until are not Unix seconds")
        if q.get("format") != "folded":
            errors.append("format is not 'folded'")
        if not q.get("sampleRate", "").isdigit() or int(q["sampleRate"]) <= 0:
            errors.append("sampleRate is not a positive integer")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            errors.append("body is not UTF-8")
            text = ""
        for line in text.splitlines():
            if not FOLDED_LINE.match(line):
                errors.append(f"body line {line!r} is not 'stack count'")
                break
        rec["body"] = text
        rec["status"] = 400 if errors else 200
        rec["answered"] = True
        STATE.record(rec)
        self.reply(rec["status"], {"message": "; ".join(errors) or "ok"})

    def logs(self, rec, errors, body):
        """glogger's Sender: gzip JSON of one batch, the token in X-Token."""
        h = rec["headers"]
        for name, value in [("content-encoding", "gzip"),
                            ("content-type", "application/json"),
                            ("x-application-name", "gprofiler")]:
            if h.get(name) != value:
                errors.append(f"header {name} is {h.get(name)!r}, not {value!r}")
        if h.get("x-token") != STATE.token:
            # Servers echo what they refuse: the client must not log it.
            errors.append(f"header X-Token {h.get('x-token')!r} is not the token")
        doc = None
        try:
            doc = json.loads(gzip.decompress(body).decode("utf-8"))
        except Exception as ex:  # noqa: BLE001 - any failure is a finding
            errors.append(f"body is not gzip JSON: {ex}")
        if isinstance(doc, dict):
            if set(doc) != LOGS_KEYS:
                errors.append(f"body keys {sorted(doc)} are not {sorted(LOGS_KEYS)}")
            if not HEX32.match(str(doc.get("batch_id", ""))):
                errors.append(f"batch_id {doc.get('batch_id')!r} is not 32 hex digits")
            meta = doc.get("metadata")
            if not isinstance(meta, dict):
                errors.append("metadata is not an object")
            else:
                for name in ("run_id", "gprofiler_version", "service_name"):
                    if not isinstance(meta.get(name), str) or not meta.get(name):
                        errors.append(f"metadata {name} is not a text")
                if meta.get("service_name") != STATE.service:
                    errors.append("metadata service_name is not the service name")
            lost = doc.get("lost_logs_count")
            if not isinstance(lost, int) or isinstance(lost, bool) or lost < 0:
                errors.append(f"lost_logs_count {lost!r} is not a count")
            entries = doc.get("logs")
            if not isinstance(entries, list):
                errors.append("logs is not a list")
                entries = []
            for i, e in enumerate(entries):
                text = e.get("text") if isinstance(e, dict) else None
                if not isinstance(text, dict):
                    errors.append(f"logs[{i}] has no text object")
                    break
                sev = e.get("severity")
                if not isinstance(sev, int) or isinstance(sev, bool) or not 1 <= sev <= 6:
                    errors.append(f"logs[{i}] severity {sev!r} is not 1..6")
                if not is_number(e.get("timestamp")):
                    errors.append(f"logs[{i}] timestamp is not a number")
                if not isinstance(text.get("message"), str):
                    errors.append(f"logs[{i}] message is not a text")
                if not isinstance(text.get("serial_no"), int):
                    errors.append(f"logs[{i}] serial_no is not a number")
                if not str(text.get("logger_name", "")).startswith("gprofiler"):
                    errors.append(f"logs[{i}] logger_name does not start with gprofiler")
                if errors:
                    break
            rec["logs_batch"] = doc
        elif doc is not None:
            errors.append("body is not a JSON object")
        status = 400 if errors else STATE.logs_status
        rec["status"] = status
        rec["answered"] = True
        STATE.record(rec)
        self.reply(status, {"message": "; ".join(errors) or "ok"})


class DataServer:
    """The data listener, which the control port can take down and up."""

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), DataHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = None
        self.start()

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def down(self):
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server = None
        with STATE.lock:
            conns = list(STATE.connections)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def up(self):
        if self.server is not None:
            return
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), DataHandler)
        self.server.daemon_threads = True
        self.start()


DATA = None


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, obj):
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/requests":
            with STATE.lock:
                self.reply(list(STATE.records))
        elif self.path == "/heartbeats":
            with STATE.lock:
                self.reply(list(STATE.heartbeats))
        elif self.path == "/completions":
            with STATE.lock:
                self.reply(list(STATE.completions))
        else:
            self.send_error(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        arg = json.loads(self.rfile.read(n) or b"null")
        if self.path == "/faults":
            with STATE.lock:
                STATE.faults.extend(arg)
        elif self.path == "/config":
            with STATE.lock:
                STATE.max_body = int(arg.get("max_body", STATE.max_body))
                STATE.slow_seconds = float(arg.get("slow_seconds", STATE.slow_seconds))
                STATE.latency = float(arg.get("latency", STATE.latency))
                STATE.logs_status = int(arg.get("logs_status", STATE.logs_status))
        elif self.path == "/down":
            DATA.down()
        elif self.path == "/up":
            DATA.up()
        elif self.path == "/clear":
            with STATE.lock:
                STATE.records.clear()
        elif self.path == "/commands":
            self.reply({"message": "ok", "command_id": queue_command(arg)})
            return
        elif self.path == "/control_faults":
            with STATE.lock:
                STATE.control_faults.extend(arg)
        else:
            self.send_error(404)
            return
        self.reply({"message": "ok"})


def queue_command(arg):
    """Makes `arg` the current command of its host (or of every host); the
    id given, or a new one. Pending again if it was handed out."""
    with STATE.lock:
        STATE.next_command += 1
        command_id = arg.get("command_id") or f"cmd-{STATE.next_command:04d}-{os.getpid()}"
        STATE.commands[arg.get("hostname", "")] = {
            "seq": STATE.next_command,
            "command_id": command_id,
            "command_type": arg.get("command_type", "start"),
            "combined_config": arg.get("combined_config", {}),
            "deliver": arg.get("deliver", "once"),
            "sent_to": set(),
        }
        return command_id


def main():
    global STATE, DATA
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--token", required=True)
    parser.add_argument("--service", required=True)
    args = parser.parse_args()
    STATE = State(args.token, args.service)
    DATA = DataServer()
    control = ThreadingHTTPServer(("127.0.0.1", 0), ControlHandler)
    control.daemon_threads = True
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print(f"READY {DATA.port} {control.server_address[1]}", flush=True)
    # Exit with the test: its end of our stdin closes when it exits.
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
