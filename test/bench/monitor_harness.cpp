// A process that runs only the memory monitor and the metrics endpoint, wired
// as the agent wires them, until SIGINT/SIGTERM: soak it with
//
//   GPA_AGENT=build/test/monitor_harness scripts/bench-soak.sh 10 ADDR 1
//
// with ADDR a loopback address such as 127.0.0.1:9464.
//
// Arguments: [metrics address (empty: no endpoint)] [monitor interval, s].

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "actors/memory_monitor.hpp"
#include "messages/registry.hpp"
#include "runtime/metric_names.hpp"
#include "runtime/metrics_server.hpp"
#include "runtime/process_env.hpp"

int main(int argc, char** argv) {
  using namespace gpa;
  rt::block_agent_signals();
  caf::actor_system_config cfg;
  add_message_types(cfg);
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  auto metrics = std::make_shared<rt::metrics>();
  rt::metric::declare_all(*metrics);
  monitor_options opts;
  if (argc > 2)
    opts.interval = std::chrono::seconds(std::atoi(argv[2]));
  auto mon = caf::actor_cast<memory_monitor_actor>(sys.spawn(
      memory_monitor, std::shared_ptr<rt::proc_source>{rt::make_proc_source()},
      metrics, make_monitor_config(opts)));
  std::unique_ptr<rt::metrics_server> server;
  if (argc > 1 && argv[1][0] != '\0')
    server = std::make_unique<rt::metrics_server>(argv[1], metrics);
  while (!rt::is_stop_signal(
      rt::wait_agent_signal(std::chrono::milliseconds(200)))) {
  }
  server.reset();
  caf::anon_send_exit(mon, caf::exit_reason::user_shutdown);
  return 0;
}
