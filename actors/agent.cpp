#include "actors/agent.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/process_reaper.hpp"
#include "messages/registry.hpp"
#include "runtime/log.hpp"
#include "runtime/process_env.hpp"

namespace gpa {

namespace {

using namespace std::chrono_literals;

/// How long the ordered shutdown may take before the agent gives up waiting.
constexpr auto shutdown_budget = 4s;

/// Stops `actors` one by one, last spawned first, waiting for each.
void shutdown_in_order(caf::actor_system& sys,
                       const std::vector<caf::actor>& actors) {
  caf::scoped_actor self{sys};
  auto deadline = std::chrono::steady_clock::now() + shutdown_budget;
  for (auto i = actors.rbegin(); i != actors.rend(); ++i) {
    self->monitor(*i);
    self->send_exit(*i, caf::exit_reason::user_shutdown);
    auto left = deadline - std::chrono::steady_clock::now();
    if (left < 0s)
      left = 0s;
    bool down = false;
    self->receive(
        [&](const caf::down_msg&) {
          down = true;
        },
        caf::after(std::chrono::duration_cast<std::chrono::milliseconds>(left))
            >> [] {});
    if (!down)
      log::get("agent")->warn("an actor did not stop in time");
  }
}

} // namespace

int run_agent(const agent_options& opts) {
  auto lg = log::get("agent");
  caf::actor_system_config cfg;
  add_message_types(cfg);
  // Two cores are the norm on our hosts; the actors never block.
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  std::unique_ptr<rt::private_temp_dir> temp;
  try {
    temp = std::make_unique<rt::private_temp_dir>(opts.reaper.temp_root);
  } catch (const std::exception& ex) {
    lg->critical("{}", ex.what());
    return 1;
  }
  std::shared_ptr<rt::process_launcher> launcher = rt::make_posix_launcher();
  std::vector<caf::actor> actors; // in spawn order

  // -- spawn and wire ---------------------------------------------------------
  reaper_config rcfg;
  rcfg.max_children = static_cast<uint32_t>(opts.reaper.max_children);
  rcfg.max_queued = static_cast<uint32_t>(opts.reaper.max_queued);
  rcfg.temp_dir = temp->path();
  auto reaper = sys.spawn(process_reaper, launcher, rcfg);
  actors.push_back(caf::actor_cast<caf::actor>(reaper));

  lg->info("gprofiler-agent running (PID {})", ::getpid());

  // -- wait for the end
  // ---------------------------------------------------------
  int status = 0;
  int sig = 0;
  while (sig == 0)
    sig = rt::wait_termination_signal(200ms);
  lg->info("received {}; shutting down", strsignal(sig));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    shutdown_in_order(sys, actors);
    stopped = true;
  });
  while (!stopped) {
    if (int again = rt::wait_termination_signal(100ms); again != 0) {
      lg->warn("received {} again; forcing the exit", strsignal(again));
      launcher->kill_all();
      log::shutdown();
      std::_Exit(1);
    }
  }
  stopper.join();
  actors.clear();
  reaper = nullptr;
  lg->info("stopped");
  return status;
}

} // namespace gpa
