#pragma once

// A scripted process launcher for the deterministic simulation: children
// are records that the test (or a scenario) ends on purpose. Exit reports go
// through the same handler as the real launcher's, so the reaper cannot tell.

#include <csignal>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "runtime/error.hpp"
#include "runtime/process_launcher.hpp"

namespace gpa::test {

/// How a fake child reacts to signals.
enum class reaction {
  /// Dies of SIGTERM, SIGINT and SIGKILL.
  dies,
  /// Ignores SIGTERM and SIGINT; only SIGKILL ends it.
  ignores_term,
};

/// A scripted child.
struct fake_child {
  uint64_t id = 0;
  int32_t pid = 0;
  rt::launch_spec spec;
  reaction on_signal = reaction::dies;
  std::vector<int> signals;
};

class fake_launcher : public rt::process_launcher {
public:
  /// Programs (argv[0]) that fail to start, with the error text.
  std::map<std::string, std::string> missing;
  /// Programs that ignore SIGTERM.
  std::set<std::string> stubborn;
  /// Children alive, by ID.
  std::map<uint64_t, fake_child> children;
  /// Every signal sent, in order: (child ID, signal).
  std::vector<std::pair<uint64_t, int>> signal_log;
  uint64_t started = 0;

  void set_exit_handler(exit_handler f) override {
    handler_ = std::move(f);
  }

  caf::expected<int32_t> start(uint64_t id,
                               const rt::launch_spec& spec) override {
    if (auto i = missing.find(spec.argv.at(0)); i != missing.end())
      return make_gpa_error(ec::spawn_failed, i->second);
    fake_child c;
    c.id = id;
    c.pid = static_cast<int32_t>(1000 + id);
    c.spec = spec;
    if (stubborn.count(spec.argv[0]))
      c.on_signal = reaction::ignores_term;
    children[id] = c;
    ++started;
    return c.pid;
  }

  bool signal(uint64_t id, int sig) override {
    auto i = children.find(id);
    if (i == children.end())
      return false;
    signal_log.emplace_back(id, sig);
    i->second.signals.push_back(sig);
    bool dies = sig == SIGKILL
                || ((sig == SIGTERM || sig == SIGINT)
                    && i->second.on_signal == reaction::dies);
    if (dies)
      kill_with(id, sig);
    return true;
  }

  rt::launcher_counts counts() const override {
    rt::launcher_counts c;
    c.live = static_cast<uint32_t>(children.size());
    c.fds = static_cast<uint32_t>(children.size() * 3);
    return c;
  }

  void kill_all() override {
    while (!children.empty())
      kill_with(children.begin()->first, SIGKILL);
  }

  /// Ends child `id` with exit status `code` and the given output.
  void exit(uint64_t id, int code, std::string out = {}, std::string err = {}) {
    child_exit report;
    report.id = id;
    report.wait_status = (code & 0xff) << 8; // as W_EXITCODE(code, 0)
    report.out_bytes = out.size();
    report.out = std::move(out);
    report.err = std::move(err);
    children.erase(id);
    if (handler_)
      handler_(std::move(report));
  }

  /// Ends child `id` as killed by `sig`.
  void kill_with(uint64_t id, int sig) {
    child_exit report;
    report.id = id;
    report.wait_status = sig; // as W_EXITCODE(0, sig)
    children.erase(id);
    if (handler_)
      handler_(std::move(report));
  }

  /// The ID of the only child running `program`, or 0.
  uint64_t find(const std::string& program) const {
    for (auto& [id, c] : children)
      if (c.spec.argv.at(0) == program)
        return id;
    return 0;
  }

private:
  exit_handler handler_;
};

} // namespace gpa::test
