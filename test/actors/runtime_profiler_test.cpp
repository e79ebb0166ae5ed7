// The runtime profilers' logic (actors/runtime_profiler.*) over scripted
// effects: the concurrency budget whatever the number of targets, a tool
// that hangs on one target answered at the deadline with a timeout error
// and stopped, targets that exit, tool errors as error stacks, a missing
// tool turning the runtime off, and windows skipped under memory pressure.

#include <boost/test/unit_test.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/runtime_profiler.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"

using namespace gpa;
using namespace std::chrono_literals;

namespace {

/// pids that exist and that are gone.
constexpr int32_t alive_pid = 4100;
constexpr int32_t gone_pid = 4200;

/// A tool whose results the test decides.
class scripted_tool : public runtime_tool {
public:
  std::string missing;
  double at = 0;
  /// pid -> what parse() gives: "" nothing, "error:<why>", else one stack.
  std::map<int32_t, std::string> outcome;
  /// Children after the first, per target and window (next()).
  size_t extra_steps = 0;
  /// What next() saw: (step, exit code) of each finished child.
  std::vector<std::pair<size_t, int32_t>> seen;
  /// pid -> why refuse() leaves it out.
  std::map<int32_t, std::string> refused;

  std::string name() const override {
    return "java";
  }
  rt::runtime_kind kind() const override {
    return rt::runtime_kind::java;
  }
  std::string check() override {
    return missing;
  }
  double start_at() const override {
    return at;
  }
  run_request command(const rt::runtime_target& t, caf::timespan) override {
    run_request req;
    req.argv = {"tool", std::to_string(t.pid)};
    return req;
  }
  std::string refuse(const rt::runtime_target& t) override {
    auto i = refused.find(t.pid);
    return i == refused.end() ? std::string{} : i->second;
  }
  std::optional<run_request> next(const rt::runtime_target& t, size_t step,
                                  const caf::expected<run_result>& r) override {
    seen.emplace_back(step, r ? r->exit_code : -1);
    if (step > extra_steps)
      return std::nullopt;
    run_request req;
    req.argv = {"step" + std::to_string(step), std::to_string(t.pid)};
    return req;
  }
  caf::expected<process_stacks> parse(const rt::runtime_target& t,
                                      run_result& last) override {
    if (extra_steps > 0)
      BOOST_CHECK_EQUAL(last.exit_code, static_cast<int32_t>(extra_steps));
    auto& o = outcome[t.pid];
    if (o.rfind("error:", 0) == 0)
      return make_gpa_error(ec::tool_failed, o.substr(6));
    if (o.rfind("skipped:", 0) == 0)
      return make_gpa_error(ec::skipped, o.substr(8));
    process_stacks p;
    p.pid = t.pid;
    p.comm = t.comm;
    if (!o.empty())
      p.stacks.push_back({t.comm + ";" + o, 5});
    return p;
  }
};

/// Effects that record what the state asks for; children finish when the
/// test says so.
class scripted_effects : public runtime_effects {
public:
  std::vector<rt::runtime_target> found;
  std::vector<
      std::pair<run_request, std::function<void(caf::expected<run_result>)>>>
      runs;
  std::vector<std::string> cancelled;
  std::vector<std::pair<caf::timespan, uint64_t>> works, deadlines;
  size_t max_running = 0;
  size_t* running = nullptr;

  void run(run_request req,
           std::function<void(caf::expected<run_result>)> done) override {
    runs.emplace_back(std::move(req), std::move(done));
  }
  void cancel(const std::string& tag) override {
    cancelled.push_back(tag);
  }
  void work_in(caf::timespan delay, uint64_t window) override {
    works.emplace_back(delay, window);
  }
  void deadline_in(caf::timespan delay, uint64_t window) override {
    deadlines.emplace_back(delay, window);
  }
  std::vector<rt::runtime_target> targets() override {
    return found;
  }
  bool alive(int32_t pid) override {
    return pid != gone_pid;
  }

  /// Finishes run `i` (exit `code`).
  void finish(size_t i, int32_t code = 0) {
    run_result r;
    r.exited = true;
    r.exit_code = code;
    auto done = runs.at(i).second;
    done(std::move(r));
  }
};

struct fixture {
  std::shared_ptr<scripted_tool> tool = std::make_shared<scripted_tool>();
  std::shared_ptr<scripted_effects> fx = std::make_shared<scripted_effects>();
  runtime_state st;
  std::vector<profile_part> replies;

  fixture() {
    log::silence();
  }

  void init(int64_t concurrency) {
    runtime_config cfg;
    cfg.concurrency = concurrency;
    st.init(cfg, tool, fx, log::get("java-test"));
    st.prepare([](std::string status) {
      BOOST_CHECK_EQUAL(status, "");
    });
  }

  void start(uint64_t id, bool skip = false) {
    window_info w;
    w.snapshot_id = id;
    w.duration = 10s;
    w.skip_runtime = skip;
    st.on_start(w);
  }

  void snapshot(uint64_t id) {
    snapshot_request req;
    req.snapshot_id = id;
    req.budget = 10s;
    st.on_snapshot(req, [this](profile_part p) {
      replies.push_back(std::move(p));
    });
  }

  void targets(int n, int32_t pid) {
    for (int i = 0; i < n; ++i)
      fx->found.push_back({pid, "java", 100, 0});
  }
};

std::string errors_of(const profile_part& p) {
  std::string out;
  for (auto& e : p.errors)
    out += std::to_string(e.pid) + ":" + e.what + ":" + e.reason + "|";
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(runtime_profiler)

BOOST_FIXTURE_TEST_CASE(fifty_targets_run_within_the_budget, fixture) {
  init(4);
  targets(50, alive_pid);
  start(1);
  BOOST_CHECK_EQUAL(fx->runs.size(), 4u);
  BOOST_CHECK_EQUAL(fx->runs[0].first.tag, "snap-1/java");
  size_t finished = 0;
  while (finished < fx->runs.size()) {
    BOOST_CHECK_LE(st.running(), 4u);
    fx->finish(finished++);
  }
  BOOST_CHECK_EQUAL(fx->runs.size(), 50u);
  BOOST_CHECK_EQUAL(st.running(), 0u);
  // Done before the snapshot: answered at once, nothing to report.
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK_EQUAL(replies[0].profiler, "java");
  BOOST_CHECK(replies[0].errors.empty());
  BOOST_CHECK(replies[0].processes.empty());
}

BOOST_FIXTURE_TEST_CASE(several_children_per_target_keep_its_slot, fixture) {
  tool->extra_steps = 2;
  tool->outcome[alive_pid] = "Main.run_[j]";
  init(2);
  targets(3, alive_pid);
  start(1);
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 2u);
  // Each finished child of a target starts its next one in the same slot;
  // the third target waits until a chain is done.
  fx->finish(0, 0);
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 3u);
  BOOST_CHECK_EQUAL(fx->runs[2].first.argv[0], "step1");
  BOOST_CHECK_EQUAL(fx->runs[2].first.tag, "snap-1/java");
  BOOST_CHECK_EQUAL(st.running(), 2u);
  fx->finish(2, 1);
  BOOST_CHECK_EQUAL(fx->runs[3].first.argv[0], "step2");
  fx->finish(3, 2); // the last child of the first target: parsed
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 5u);
  BOOST_CHECK_EQUAL(fx->runs[4].first.argv[0], "tool"); // the third target
  BOOST_CHECK_EQUAL(st.running(), 2u);
  // The rest, in order: each child exits with its step number, so that
  // parse() sees the last child's result.
  std::vector<bool> finished(fx->runs.size(), false);
  finished[0] = finished[2] = finished[3] = true;
  for (size_t i = 1; i < fx->runs.size(); ++i) {
    finished.resize(fx->runs.size(), false);
    if (finished[i])
      continue;
    finished[i] = true;
    auto& argv0 = fx->runs[i].first.argv[0];
    fx->finish(i, argv0 == "step1" ? 1 : argv0 == "step2" ? 2 : 0);
  }
  BOOST_CHECK_EQUAL(fx->runs.size(), 9u);
  BOOST_CHECK_EQUAL(st.running(), 0u);
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK_EQUAL(replies[0].processes.size(), 3u);
  BOOST_CHECK(replies[0].errors.empty());
  BOOST_CHECK_EQUAL(tool->seen.size(), 9u);
}

BOOST_FIXTURE_TEST_CASE(skipped_targets_say_why, fixture) {
  init(1);
  fx->found = {{gone_pid + 1, "java", 100, 0}, {alive_pid, "java", 100, 0}};
  tool->refused[gone_pid + 1] = "unsupported JVM";
  tool->outcome[alive_pid] = "skipped:found out while running";
  start(1);
  // The refused target runs nothing and takes no slot.
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 1u);
  BOOST_CHECK_EQUAL(fx->runs[0].first.argv[1], std::to_string(alive_pid));
  fx->finish(0);
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK_EQUAL(errors_of(replies[0]),
                    std::to_string(gone_pid + 1) + ":skipped:unsupported JVM|"
                        + std::to_string(alive_pid)
                        + ":skipped:found out while running|");
}

BOOST_FIXTURE_TEST_CASE(a_hung_target_is_a_timeout_at_the_deadline, fixture) {
  init(2);
  targets(3, alive_pid);
  tool->outcome[alive_pid] = "Main.run_[j]";
  start(1);
  fx->finish(0); // the first target: its stacks
  fx->finish(1);
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 3u); // the third started; it hangs
  snapshot(1);
  BOOST_CHECK(replies.empty());
  BOOST_REQUIRE_EQUAL(fx->deadlines.size(), 1u);
  BOOST_CHECK(fx->deadlines[0].first < 10s); // before the budget runs out
  st.on_deadline(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK_EQUAL(replies[0].processes.size(), 2u);
  BOOST_CHECK_EQUAL(errors_of(replies[0]),
                    std::to_string(alive_pid) + ":error:timed out|");
  BOOST_CHECK(fx->cancelled == std::vector<std::string>{"snap-1/java"});
  // The stopped child reports later: nothing more happens.
  fx->finish(2);
  BOOST_CHECK_EQUAL(replies.size(), 1u);
  BOOST_CHECK_EQUAL(st.running(), 0u);
}

BOOST_FIXTURE_TEST_CASE(queued_targets_at_the_deadline_are_said, fixture) {
  init(1);
  targets(3, alive_pid);
  start(1);
  snapshot(1);
  st.on_deadline(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  auto e = errors_of(replies[0]);
  BOOST_CHECK_NE(e.find("timed out"), std::string::npos);
  BOOST_CHECK_NE(e.find("not profiled: the window's time ran out"),
                 std::string::npos);
  // The next window's work is not blocked by the dropped queue.
  fx->finish(0);
  start(2);
  BOOST_CHECK_EQUAL(fx->runs.size(), 2u);
}

BOOST_FIXTURE_TEST_CASE(exits_and_tool_errors_are_error_stacks, fixture) {
  init(4);
  fx->found = {{gone_pid, "java", 100, 0}, {alive_pid, "java", 100, 0}};
  tool->outcome[alive_pid] = "error:attach failed (exit 1): refused";
  start(1);
  fx->finish(0);
  fx->finish(1);
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK_EQUAL(errors_of(replies[0]),
                    std::to_string(gone_pid)
                        + ":error:process went down during profiling|"
                        + std::to_string(alive_pid)
                        + ":error:attach failed (exit 1): refused|");
}

BOOST_FIXTURE_TEST_CASE(a_child_that_cannot_start_is_an_error_stack, fixture) {
  init(4);
  targets(1, alive_pid);
  start(1);
  fx->runs[0].second(make_gpa_error(ec::spawn_failed, "no such file"));
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK_NE(errors_of(replies[0]).find("cannot run the tool"),
                 std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_missing_tool_turns_the_runtime_off, fixture) {
  tool->missing = "jcmd not found";
  init(4);
  BOOST_CHECK(st.disabled());
  targets(5, alive_pid);
  start(1);
  snapshot(1);
  BOOST_CHECK(fx->runs.empty());
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK(replies[0].errors.empty() && replies[0].processes.empty());
}

BOOST_FIXTURE_TEST_CASE(skipped_windows_and_late_work, fixture) {
  tool->at = 0.8;
  init(4);
  targets(2, alive_pid);
  start(1, true); // memory pressure: no work
  BOOST_CHECK(fx->works.empty());
  snapshot(1);
  BOOST_CHECK_EQUAL(replies.size(), 1u);
  start(2);
  BOOST_REQUIRE_EQUAL(fx->works.size(), 1u);
  BOOST_CHECK(fx->works[0].first == 8s);
  BOOST_CHECK(fx->runs.empty());
  st.on_work(2);
  BOOST_CHECK_EQUAL(fx->runs.size(), 2u);
  st.on_work(2); // once per window
  BOOST_CHECK_EQUAL(fx->runs.size(), 2u);
  // A window that ends before its work was due does the work at once.
  start(3);
  snapshot(3);
  BOOST_CHECK_EQUAL(fx->runs.size(), 4u);
}

BOOST_AUTO_TEST_SUITE_END()
