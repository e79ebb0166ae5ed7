// `gprofiler-agent node-attach PID START_TIME ADDON_DIR start|stop`: the
// agent's own child for --nodejs-mode attach-maps (runtime/node_attach.hpp).
// Not for users: the Node.js profiler runs it through the process reaper,
// one per Node process, so that joining the target's network namespace and
// waiting on its inspector happen outside the agent, under a timeout.
// Prints "ok <node version>" and exits 0, or says why not on stderr and
// exits 1 (2 for a usage mistake).

#include <cstdlib>
#include <iostream>
#include <string>

#include "app/commands.hpp"
#include "runtime/node_attach.hpp"

namespace gpa {

namespace {

bool parse_number(const char* text, uint64_t max, uint64_t& out) {
  if (text == nullptr || *text == '\0')
    return false;
  char* end = nullptr;
  errno = 0;
  auto v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || v > max || text[0] == '-')
    return false;
  out = v;
  return true;
}

} // namespace

int run_node_attach(int argc, char** argv) {
  const char* usage = "usage: gprofiler-agent node-attach PID START_TIME "
                      "ADDON_DIR start|stop (the agent runs it itself)\n";
  if (argc != 4) {
    std::cerr << usage;
    return 2;
  }
  rt::node_attach_request req;
  uint64_t pid = 0;
  std::string action = argv[3];
  if (!parse_number(argv[0], 1u << 30, pid) || pid == 0
      || !parse_number(argv[1], UINT64_MAX, req.start_time)
      || (action != "start" && action != "stop")) {
    std::cerr << usage;
    return 2;
  }
  req.pid = static_cast<int32_t>(pid);
  req.module_dir = argv[2];
  req.stop = action == "stop";
  auto r = rt::node_attach(req);
  if (!r.error.empty()) {
    std::cerr << r.error << "\n";
    return 1;
  }
  std::cout << "ok " << r.node_version << "\n";
  return 0;
}

} // namespace gpa
