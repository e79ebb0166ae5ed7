#!/usr/bin/env node
// A stand-in for a CRI runtime (containerd, CRI-O) on a unix socket, for the
// container names tests: real gRPC over HTTP/2 cleartext (prior knowledge),
// RuntimeService/ListContainers answering the containers of a JSON file,
// encoded as protobuf by hand (runtime.v1 ListContainersResponse).
//
//   node cri_standin.js --socket PATH --containers FILE [--mode MODE] [--log FILE]
//
// The containers file: [{"id": "<64 hex>", "name": "<metadata name>",
//   "attempt": 0, "labels": {...}, "annotations": {...}}, ...]
//
// Modes:
//   ok             serves runtime.v1 (and runtime.v1alpha2)
//   v1alpha2-only  answers runtime.v1 with grpc-status 12 (UNIMPLEMENTED),
//                  as an older containerd does, and serves runtime.v1alpha2
//   silent         accepts the stream and never answers
//   bad-proto      answers a well-framed message that is not valid protobuf
//   bad-frame      answers a frame whose length runs past the body
//   grpc-error     answers grpc-status 14 (UNAVAILABLE) in the trailers
//
// Prints "READY" once it listens; exits when its stdin closes. With --log,
// appends each request's path, one per line.

'use strict';
const fs = require('fs');
const http2 = require('http2');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const socketPath = arg('socket');
const containersFile = arg('containers');
const mode = arg('mode', 'ok');
const logFile = arg('log', '');

// -- a minimal protobuf encoder ---------------------------------------------
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
function key(field, wire) {
  return varint((field << 3) | wire);
}
function bytesField(field, buf) {
  return Buffer.concat([key(field, 2), varint(buf.length), buf]);
}
function stringField(field, s) {
  return bytesField(field, Buffer.from(s, 'utf8'));
}
function varintField(field, n) {
  return Buffer.concat([key(field, 0), varint(n)]);
}
function mapField(field, obj) {
  return Buffer.concat(
    Object.entries(obj || {}).map(([k, v]) =>
      bytesField(field, Buffer.concat([stringField(1, k), stringField(2, v)]))
    )
  );
}
function container(c) {
  const metadata = Buffer.concat([
    stringField(1, c.name || ''),
    varintField(2, c.attempt || 0),
  ]);
  const image = stringField(1, 'docker.io/library/busybox:latest');
  return Buffer.concat([
    stringField(1, c.id),
    stringField(2, 'f'.repeat(64)), // pod_sandbox_id
    bytesField(3, metadata),
    bytesField(4, image), // ImageSpec, skipped by the agent
    stringField(5, 'sha256:' + '0'.repeat(64)),
    varintField(6, 1), // CONTAINER_RUNNING
    varintField(7, 1700000000000000000n),
    mapField(8, c.labels),
    mapField(9, c.annotations),
  ]);
}
function listContainersResponse() {
  // Read at each request: a test may change the containers.
  const containers = JSON.parse(fs.readFileSync(containersFile, 'utf8'));
  return Buffer.concat(containers.map((c) => bytesField(1, container(c))));
}
function frame(msg) {
  const head = Buffer.alloc(5);
  head.writeUInt8(0, 0);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

// -- the server -----------------------------------------------------------------
try {
  fs.unlinkSync(socketPath);
} catch (e) {}

const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  if (logFile) fs.appendFileSync(logFile, path + '\n');
  stream.on('error', () => {});
  stream.on('data', () => {});
  stream.on('end', () => {
    if (mode === 'silent') return;
    const unimplemented =
      !path.endsWith('.RuntimeService/ListContainers') ||
      !(path.startsWith('/runtime.v1.') || path.startsWith('/runtime.v1alpha2.')) ||
      (mode === 'v1alpha2-only' && path.startsWith('/runtime.v1.'));
    if (unimplemented) {
      // A trailers-only reply, as gRPC servers send for unknown methods.
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '12',
          'grpc-message': 'unknown service',
        },
        { endStream: true }
      );
      return;
    }
    let body;
    let status = '0';
    if (mode === 'bad-proto') body = frame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1, 2]));
    else if (mode === 'bad-frame') body = Buffer.from([0, 0, 0, 0x10, 0, 1, 2, 3]);
    else if (mode === 'grpc-error') {
      body = Buffer.alloc(0);
      status = '14';
    } else body = frame(listContainersResponse());
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc' },
      { waitForTrailers: true }
    );
    stream.on('wantTrailers', () => {
      stream.sendTrailers(
        status === '0' ? { 'grpc-status': '0' } : { 'grpc-status': status, 'grpc-message': 'unavailable' }
      );
    });
    stream.end(body);
  });
});
server.on('sessionError', () => {});
server.listen(socketPath, () => {
  process.stdout.write('READY\n');
});

process.stdin.on('data', () => {});
process.stdin.on('end', () => {
  try {
    fs.unlinkSync(socketPath);
  } catch (e) {}
  process.exit(0);
});
process.stdin.resume();
