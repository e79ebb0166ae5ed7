#pragma once

// The deterministic test fixture: a CAF actor system on the test_coordinator,
// where messages are delivered only when the test says so and time moves only
// when the test advances it. Usable from Boost.Test (CAF's own dsl.hpp is not).

#include <cstdlib>
#include <memory>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "messages/registry.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"

namespace gpa::test {

/// The outcome of a request made through sim_fixture::request.
template <class T>
struct reply {
  /// Set once the response (or an error) arrived.
  bool done = false;
  std::optional<T> value;
  caf::error error;
};

/// A deterministic actor system.
class sim_fixture {
public:
  sim_fixture()
      : sys(init(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(
                            sys.scheduler())) {
    // Actors with pending timers would otherwise keep ~actor_system waiting.
    sys.await_actors_before_shutdown(false);
  }

  virtual ~sim_fixture() {
    run();
  }

  /// Delivers every pending message; fires no timer.
  size_t run() {
    return sched.run();
  }

  /// Moves simulated time forward by `d`, firing what falls due, then
  /// delivers every message. Returns the number of timers fired.
  size_t advance(caf::timespan d) {
    auto n = sched.advance_time(d);
    run();
    return n;
  }

  /// Fires the next pending timer (jumping time to it) and delivers.
  bool fire_next_timer() {
    auto fired = sched.trigger_timeout();
    run();
    return fired;
  }

  /// The simulated time (starts at the epoch).
  caf::actor_clock::time_point now() {
    return sched.clock().now();
  }

  /// Sends a request from a helper actor; the reply fills in as run() goes.
  template <class T, class Handle, class... Ts>
  std::shared_ptr<reply<T>> request(const Handle& dest, Ts... xs) {
    auto result = std::make_shared<reply<T>>();
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(dest, caf::infinite, xs...)
          .then(
              [=](T& x) {
                result->done = true;
                result->value = std::move(x);
              },
              [=](caf::error& err) {
                result->done = true;
                result->error = std::move(err);
              });
    });
    return result;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

private:
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    add_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    // GPA_SIM_LOG=1 shows the actors' logs (debug level) on stderr.
    if (std::getenv("GPA_SIM_LOG")) {
      log_options opts;
      opts.file.clear();
      opts.verbose = true;
      log::setup(opts);
    } else {
      log::silence();
    }
    return cfg;
  }
};

} // namespace gpa::test
