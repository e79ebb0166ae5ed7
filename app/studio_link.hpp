#pragma once

// The agent's side of Performance Studio's control plane
// (--enable-heartbeat-server): a thread of its own that sends a heartbeat
// every --heartbeat-interval seconds, hands each command to the controller,
// and reports the controller's outcomes. Its HTTP calls block only this
// thread; the controller's effects only queue work for it.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "actors/controller.hpp"
#include "config/options.hpp"
#include "runtime/studio_client.hpp"

namespace gpa {

class studio_link {
public:
  /// Talks to --api-server with the options' token and service name; keeps
  /// the executed command ids in `ledger_path` (a ledger that cannot be
  /// read is logged and starts empty).
  studio_link(const agent_options& opts, std::string hostname,
              std::string ledger_path);

  /// Stops the thread (see stop()).
  ~studio_link();

  studio_link(const studio_link&) = delete;
  studio_link& operator=(const studio_link&) = delete;

  /// Starts heartbeating; commands go to `controller`.
  void start(controller_actor controller);

  /// Interrupts the request in flight and joins the thread; outcomes not
  /// sent yet are logged and dropped.
  void stop();

  /// The controller's effects (thread-safe, never block on the network).
  void report(const command_outcome& outcome);
  bool executed_before(const std::string& id);
  void remember_executed(const std::string& id);

private:
  void run();
  void beat();
  void send_reports();
  /// Adds `id` to executed_ (mtx_ held).
  void note_executed(const std::string& id);

  std::string hostname_;
  std::string ip_;
  std::string api_;
  std::string service_;
  std::chrono::seconds interval_;
  std::unique_ptr<rt::studio_client> client_;
  controller_actor controller_;

  std::mutex mtx_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<command_outcome> reports_;
  std::vector<std::string> to_remember_;
  /// Every id executed, by this run or in the ledger (what executed_before
  /// answers from, so that the controller never waits for the ledger's
  /// fsync), oldest first in `executed_order_` (at most twice the ledger's
  /// size).
  std::set<std::string> executed_;
  std::deque<std::string> executed_order_;
  /// The ledger, written on this thread only; `ledger_mtx_` guards it (and
  /// never `mtx_`'s holders).
  std::mutex ledger_mtx_;
  std::unique_ptr<rt::command_ledger> ledger_;
  /// Ids handed to the controller, oldest first (at most
  /// rt::command_ledger::max_ids), and the last one.
  std::deque<std::string> received_;
  std::string last_command_id_;
  /// The last heartbeat error said (said again only when it changes).
  std::string last_error_;
  std::thread thread_;
};

} // namespace gpa
