#!/usr/bin/env node
// Writes a synthetic host-wide .col profile for the flame-graph benchmark:
// N distinct stacks (default 50,000) over 60 processes in a few containers,
// Java / Python / native code with kernel frames at the leaves, depths 8-60,
// and skewed sample counts (most stacks hit once or twice, a few are hot),
// like a real 60 s profile of a busy host. Deterministic (fixed seed).
//
//   node make_flamegraph_col.js OUT.col [STACKS]
'use strict';
const fs = require('node:fs');

const [out, stacksArg] = process.argv.slice(2);
if (!out) {
  console.error('usage: node make_flamegraph_col.js OUT.col [STACKS]');
  process.exit(2);
}
const STACKS = Number(stacksArg || 50000);

// mulberry32: small deterministic PRNG.
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (arr) => arr[Math.floor(rand() * arr.length)];
// Index skewed to small values: the first callees are the common ones.
const skewed = (n) => Math.min(n - 1, Math.floor(n * Math.pow(rand(), 2.5)));

const words = ['handle', 'process', 'dispatch', 'read', 'write', 'parse', 'encode',
  'decode', 'compute', 'lookup', 'update', 'flush', 'serialize', 'validate', 'render',
  'schedule', 'fetch', 'merge', 'sort', 'hash', 'compress', 'query', 'commit', 'poll'];
const kernel = ['entry_SYSCALL_64_after_hwframe', 'do_syscall_64', '__x64_sys_read',
  'ksys_read', 'vfs_read', 'tcp_recvmsg', '__x64_sys_futex', 'futex_wait', 'schedule',
  '__schedule', 'finish_task_switch', 'asm_exc_page_fault', 'handle_mm_fault',
  'copy_user_generic_string', 'ext4_file_read_iter', 'sock_sendmsg', 'tcp_sendmsg'];

function frameName(kind, id) {
  const w = pick(words) + '_' + id.toString(36);
  switch (kind) {
    case 'java': return `void com.example.svc${id % 17}.Module${id % 53}.${w}(java.lang.Object)_[j]`;
    case 'python': return `${w} (/srv/app/pkg${id % 11}/module_${id % 41}.py:${10 + (id % 900)})_[p]`;
    default: return `${w}_${(id * 2654435761 >>> 0).toString(16)}`;
  }
}

// A lazily grown call tree per process: node = {name, children[]}.
function makeProcess(i) {
  const kind = i % 3 === 0 ? 'java' : i % 3 === 1 ? 'python' : 'native';
  const comm = kind === 'java' ? `java-svc${i}` : kind === 'python' ? `python3-w${i}` : `svc-${i}`;
  const container = i % 4 === 0 ? '' : `pod-${i % 7}`;
  // A program has a finite set of functions (here 3,000), reached through
  // many call paths.
  const vocabulary = Array.from({ length: 3000 }, (_, j) => frameName(kind, i * 100000 + j));
  return { kind, comm, container, root: { children: [] }, vocabulary };
}
const procs = Array.from({ length: 60 }, (_, i) => makeProcess(i));

function walk(proc) {
  const depth = 8 + Math.floor(Math.pow(rand(), 1.5) * 52);
  const frames = [];
  let node = proc.root;
  for (let d = 0; d < depth; d++) {
    const fanout = d < 4 ? 3 : 12;
    let idx = skewed(fanout + 2);
    if (idx >= node.children.length) {
      idx = node.children.length;
      const v = proc.vocabulary;
      node.children.push({ name: v[skewed(v.length)], children: [] });
    }
    node = node.children[idx];
    frames.push(node.name);
  }
  const k = Math.floor(rand() * 4);
  for (let j = 0; j < k; j++) frames.push(kernel[(k * 5 + j * 3) % kernel.length] + '_[k]');
  return frames;
}

const header = {
  containers: [...new Set(procs.map((p) => p.container).filter(Boolean))],
  container_names_enabled: true,
  metadata: { hostname: 'bench-host', agent_version: 'bench',
    run_arguments: { service_name: 'bench', profile_api_version: 'v2' } },
  metrics: { cpu_avg: 71.5, mem_avg: 48.2 },
  application_metadata: [null],
  application_metadata_enabled: true,
  profiling_mode: 'cpu',
  start_time: '2024-05-01T10:00:00+00:00',
  end_time: '2024-05-01T10:01:00+00:00',
};
const seen = new Set();
const lines = ['# ' + JSON.stringify(header)];
let total = 0;
// Process weights: a few busy processes, a long tail.
const weights = procs.map((_, i) => 1 / (1 + i));
const wsum = weights.reduce((a, b) => a + b, 0);
function pickProc() {
  let r = rand() * wsum;
  for (let i = 0; i < procs.length; i++) {
    r -= weights[i];
    if (r <= 0) return procs[i];
  }
  return procs[procs.length - 1];
}
while (seen.size < STACKS) {
  const p = pickProc();
  const stack = `0;${p.container};${p.comm};${walk(p).join(';')}`;
  if (seen.has(stack)) continue;
  seen.add(stack);
  const u = rand();
  const count = u < 0.002 ? 200 + Math.floor(rand() * 800) : 1 + Math.floor(-Math.log(1 - u) * 1.5);
  total += count;
  lines.push(`${stack} ${count}`);
}
fs.writeFileSync(out, lines.join('\n') + '\n');
console.log(`wrote ${out}: ${STACKS} stacks, ${total} samples, ${fs.statSync(out).size} bytes`);
