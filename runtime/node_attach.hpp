#pragma once

// Makes a running Node.js process write its JIT symbols to
// /tmp/perf-<pid>.map (gProfiler's --nodejs-mode attach-maps), so that perf
// names its JavaScript frames. As gProfiler does it: SIGUSR1 opens the
// process's inspector on 127.0.0.1:9229 (in its network namespace), a
// Runtime.evaluate over the inspector's WebSocket loads our addon
// (runtime/node/perfmap_addon.cpp) into it, then the inspector is closed
// again (process._debugEnd()). The addon file is placed where the process
// can open it: its own path when the process sees our filesystem, else a
// copy under the process's root (containers).
//
// This runs in a child of the agent (`gprofiler-agent node-attach`), through
// the process reaper: it joins the target's network namespace and may wait
// on a process that does not answer, neither of which the agent itself may
// do. Everything the target or whatever listens on its port says is
// untrusted: bounded, checked, never executed.

#include <cstdint>
#include <string>
#include <vector>

namespace gpa::rt {

/// What to attach to.
struct node_attach_request {
  int32_t pid = 0;
  /// /proc/PID/stat's start time as the agent saw it: a pid reused since
  /// is refused (0: not checked).
  uint64_t start_time = 0;
  /// The directory of the addons, one per Node.js ABI
  /// (gpa-node-perfmap-<NODE_MODULE_VERSION>.node), in the agent's
  /// filesystem.
  std::string module_dir;
  /// Stop the writer and remove the map instead of starting it.
  bool stop = false;
  /// The inspector's port (gProfiler's: Node's default).
  uint16_t port = 9229;
  /// Time for the inspector to come up after SIGUSR1, in milliseconds.
  int64_t wait_ms = 5000;
  /// /proc, for tests.
  std::string proc_root = "/proc";
};

/// What came of it.
struct node_attach_result {
  /// "" on success, else why not (one line).
  std::string error;
  /// process.version of the target ("v20.20.2"), when it answered.
  std::string node_version;
};

/// Attaches (or detaches). Joins the target's network namespace when it is
/// not ours: call it in a process of its own, never in the agent.
node_attach_result node_attach(const node_attach_request& req);

/// The WebSocket frame that carries `text` from a client (masked with
/// `mask`), for tests.
std::string websocket_client_frame(const std::string& text,
                                   const unsigned char mask[4]);

/// One addon: the Node.js ABI (NODE_MODULE_VERSION) it is built for and
/// its path as the target sees it.
struct node_addon {
  std::string abi;
  std::string path;
};

/// The addons in `dir` (files gpa-node-perfmap-<abi>.node), sorted by ABI.
std::vector<node_addon> find_node_addons(const std::string& dir);

/// The JavaScript evaluated in the target: it checks that it runs as
/// `nspid`, picks the addon of its ABI, loads it and starts (or stops) it;
/// it evaluates to "ok <version>" or to why not.
std::string node_attach_expression(int32_t nspid,
                                   const std::vector<node_addon>& addons,
                                   bool stop);

} // namespace gpa::rt
