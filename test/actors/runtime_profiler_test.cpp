// The runtime profilers' logic (actors/runtime_profiler.*) over scripted
// effects: the concurrency budget whatever the number of targets, a tool
// that hangs on one target answered at the deadline with a timeout error
// and stopped, targets that exit, tool errors as error stacks, a missing
// tool turning the runtime off, and windows skipped under memory pressure;
// the Ruby, Python (py-spy), PHP and .NET tools' commands and outputs (suite
// runtime_tools); py-spy and dotnet-trace stand-ins through the real reaper
// (suite runtime_tools_real).

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/process_reaper.hpp"
#include "actors/runtime_profiler.hpp"
#include "actors/runtime_tools.hpp"
#include "messages/registry.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/log.hpp"
#include "runtime/proc.hpp"
#include "runtime/process_env.hpp"

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
  /// The record length each command was given.
  std::vector<caf::timespan> lengths;

  run_request command(const rt::runtime_target& t,
                      caf::timespan length) override {
    lengths.push_back(length);
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
  std::vector<std::pair<caf::timespan, uint64_t>> works, deadlines, polls;
  caf::timespan clock{0};
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
  void spawn_poll_in(caf::timespan delay, uint64_t window) override {
    polls.emplace_back(delay, window);
  }
  caf::timespan now() override {
    return clock;
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

  void init(int64_t concurrency, bool spawned = false) {
    runtime_config cfg;
    cfg.concurrency = concurrency;
    cfg.profile_spawned = spawned;
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

BOOST_FIXTURE_TEST_CASE(processes_started_during_the_window_get_the_time_left,
                        fixture) {
  init(4, true);
  fx->found.push_back({alive_pid, "ruby", 100, 0, 111});
  start(1); // a 10 s window
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 1u);
  BOOST_REQUIRE_EQUAL(fx->polls.size(), 1u);
  BOOST_CHECK(fx->polls[0].first == 1s);
  // 3.4 s in, a process starts (and one reuses the first's pid: another
  // process): both recorded for the 6 whole seconds left.
  fx->clock = 3400ms;
  fx->found.push_back({alive_pid + 1, "ruby", 0.2, 0, 222});
  fx->found[0].start_time = 112;
  st.on_spawn_poll(1);
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 3u);
  BOOST_CHECK((tool->lengths == std::vector<caf::timespan>{10s, 6s, 6s}));
  BOOST_REQUIRE_EQUAL(fx->polls.size(), 2u);
  // A process seen already is not profiled twice.
  fx->clock = 4400ms;
  st.on_spawn_poll(1);
  BOOST_CHECK_EQUAL(fx->runs.size(), 3u);
  // Less than a second left: no new job, no more polls.
  fx->clock = 9100ms;
  fx->found.push_back({alive_pid + 2, "ruby", 0.1, 0, 333});
  auto polls = fx->polls.size();
  st.on_spawn_poll(1);
  BOOST_CHECK_EQUAL(fx->runs.size(), 3u);
  BOOST_CHECK_EQUAL(fx->polls.size(), polls);
  for (size_t i = 0; i < fx->runs.size(); ++i)
    fx->finish(i);
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(without_the_flag_no_process_is_added_mid_window,
                        fixture) {
  init(4);
  fx->found.push_back({alive_pid, "ruby", 100, 0, 111});
  start(1);
  BOOST_CHECK(fx->polls.empty());
  fx->found.push_back({alive_pid + 1, "ruby", 0.2, 0, 222});
  st.on_spawn_poll(1); // a stray poll changes nothing
  BOOST_CHECK_EQUAL(fx->runs.size(), 1u);
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

// -- the Ruby, Python, PHP and .NET tools (actors/runtime_tools.*) ------------
//
// Their command lines are gProfiler's, argument for argument; their output
// files (written here as the tools write them, from the parsers' golden
// fixtures in test/data/runtime/) become stacks with gProfiler's suffixes;
// a failed tool, garbage and a missing output file are errors; the files
// are removed when the child has ended. And a tool with one child for all
// targets (phpspy) through runtime_state.

namespace {

/// A test data file's whole text.
std::string data_file(const std::string& name) {
  std::ifstream in(std::string{GPA_TEST_DATA_DIR} + "/runtime/" + name,
                   std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  BOOST_REQUIRE(out);
}

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

/// One process of a parser's .expected file: "# pid P comm C", then
/// "STACK COUNT" lines.
std::string expected_text(const std::string& name) {
  auto text = data_file(name);
  return text.substr(text.find('\n') + 1);
}

std::string stacks_text(const std::vector<process_stacks>& ps) {
  std::string out;
  for (auto& p : ps)
    for (auto& s : p.stacks)
      out += s.stack + " " + std::to_string(s.count) + "\n";
  return out;
}

struct tools_fixture {
  rt::private_temp_dir temp{"/tmp"};
  tool_context ctx;
  runtime_options opts;
  compat_options compat;

  tools_fixture() {
    log::silence();
    ctx.temp_dir = temp.path();
    ctx.fs = rt::make_posix_file_system();
    ctx.which = [](const std::string& name) {
      return name.rfind("/opt/", 0) == 0 ? name : std::string{};
    };
    ctx.namespace_pid = [](int32_t pid) {
      return pid + 1000;
    };
    opts.rbspy_path = "/opt/rbspy/bin/rbspy";
    opts.phpspy_path = "/opt/phpspy/phpspy";
    opts.dotnet_trace_path = "/opt/dotnet/tools/dotnet-trace";
    opts.php_mode = "phpspy";
    opts.dotnet_mode = "dotnet-trace";
  }

  static run_result exited(int code, std::string err = {}) {
    run_result r;
    r.exited = true;
    r.exit_code = code;
    r.err = std::move(err);
    return r;
  }

  /// The value of `flag`'s argument in `argv`.
  static std::string arg(const run_request& req, const std::string& flag) {
    for (size_t i = 0; i + 1 < req.argv.size(); ++i)
      if (req.argv[i] == flag)
        return req.argv[i + 1];
    BOOST_FAIL("no " << flag << " in the command");
    return {};
  }
};

using strings = std::vector<std::string>;

} // namespace

BOOST_AUTO_TEST_SUITE(runtime_tools)

BOOST_FIXTURE_TEST_CASE(rbspy_runs_as_gprofiler_runs_it, tools_fixture) {
  ctx.frequency = 11;
  auto tool = make_ruby_tool(opts, ctx);
  BOOST_REQUIRE(tool);
  BOOST_CHECK_EQUAL(tool->name(), "ruby");
  BOOST_CHECK(tool->kind() == rt::runtime_kind::ruby);
  BOOST_CHECK_EQUAL(tool->check(), "");
  BOOST_CHECK(!tool->one_child_for_all());
  auto req = tool->command({4242, "ruby", 100, 0}, 3s);
  auto out = arg(req, "--file");
  BOOST_CHECK(out.rfind(temp.path() + "/rbspy.", 0) == 0);
  BOOST_CHECK(
      (req.argv
       == strings{"/opt/rbspy/bin/rbspy", "record", "--silent", "-r", "11",
                  "-d", "3", "--nonblocking", "--oncpu", "--format=collapsed",
                  "--file", out, "--raw-file", "/dev/null", "-p", "4242"}));
  // gProfiler: the duration plus 10 s, then SIGKILL.
  BOOST_CHECK(req.timeout == 13s);
  BOOST_CHECK(req.kill_grace == caf::timespan{0});
  // Each command has its own file.
  BOOST_CHECK_NE(arg(tool->command({4242, "ruby", 100, 0}, 3s), "--file"), out);
}

BOOST_FIXTURE_TEST_CASE(rbspy_frequency_is_capped_at_100, tools_fixture) {
  ctx.frequency = 500;
  auto tool = make_ruby_tool(opts, ctx);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  auto req = tool->command({1, "ruby", 100, 0}, 60s);
  BOOST_CHECK_EQUAL(arg(req, "-r"), "100");
  BOOST_CHECK_EQUAL(arg(req, "-d"), "60");
  BOOST_CHECK_NE(tool->describe().find("100 Hz (-f 500 is above rbspy's "
                                       "limit"),
                 std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(rbspy_output_becomes_ruby_stacks, tools_fixture) {
  auto tool = make_ruby_tool(opts, ctx);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  rt::runtime_target t{4242, "ruby", 100, 0};
  // Upstream rbspy's output: the parser adds the fork's _[rb].
  auto req = tool->command(t, 3s);
  auto out = arg(req, "--file");
  write_file(out, data_file("rbspy_upstream.collapsed"));
  auto r = exited(0);
  auto got = tool->read({t}, req, r);
  BOOST_REQUIRE_MESSAGE(got, (got ? "" : describe(got.error())));
  BOOST_REQUIRE_EQUAL(got->size(), 1u);
  BOOST_CHECK_EQUAL((*got)[0].pid, 4242);
  BOOST_CHECK_EQUAL(stacks_text(*got), expected_text("rbspy.expected"));
  BOOST_CHECK(exists(out));
  tool->ended(req);
  BOOST_CHECK(!exists(out));
}

BOOST_FIXTURE_TEST_CASE(rbspy_failures_are_errors, tools_fixture) {
  ctx.max_output = 64;
  auto tool = make_ruby_tool(opts, ctx);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  rt::runtime_target t{7, "ruby", 100, 0};
  auto reason = [&](run_result r, const std::string* text) {
    auto req = tool->command(t, 3s);
    if (text)
      write_file(arg(req, "--file"), *text);
    auto got = tool->read({t}, req, r);
    tool->ended(req);
    BOOST_REQUIRE(!got);
    return message_of(got.error());
  };
  std::string garbage = "not rbspy\n\x01\x02\n";
  BOOST_CHECK_EQUAL(reason(exited(0), nullptr), "rbspy wrote no output file");
  BOOST_CHECK_NE(reason(exited(0), &garbage).find("rbspy output has no valid"),
                 std::string::npos);
  BOOST_CHECK_EQUAL(
      reason(exited(1, "\nError: failed to attach to process 7\nmore\n"),
             &garbage),
      "rbspy exited with status 1: Error: failed to attach to process 7");
  run_result killed;
  killed.term_signal = 9;
  BOOST_CHECK_EQUAL(reason(killed, nullptr), "rbspy was killed by signal 9");
  std::string big(65, 'x');
  BOOST_CHECK_EQUAL(reason(exited(0), &big),
                    "rbspy's output is 65 bytes, more than the limit of 64");
}

BOOST_FIXTURE_TEST_CASE(pyspy_runs_as_gprofiler_runs_it, tools_fixture) {
  ctx.frequency = 11;
  auto tool = make_pyspy_tool("/opt/py-spy/py-spy", ctx, nullptr);
  BOOST_REQUIRE(tool);
  BOOST_CHECK_EQUAL(tool->name(), "python");
  BOOST_CHECK(tool->kind() == rt::runtime_kind::python);
  BOOST_CHECK_EQUAL(tool->check(), "");
  BOOST_CHECK(!tool->one_child_for_all());
  auto req = tool->command({4242, "python3", 100, 0}, 3s);
  auto out = arg(req, "--output");
  // A fresh file of the temporary directory: pyspy.<n>.<pid>.col.
  BOOST_CHECK_EQUAL(out, temp.path() + "/pyspy.1.4242.col");
  // gProfiler's PySpyProfiler._make_command, argument for argument.
  BOOST_CHECK((req.argv
               == strings{"/opt/py-spy/py-spy", "record", "-r", "11", "-d", "3",
                          "--nonblocking", "--format", "raw", "-F", "--output",
                          out, "-p", "4242", "--full-filenames", "--gil"}));
  // gProfiler: the duration plus 10 s, then SIGKILL.
  BOOST_CHECK(req.timeout == 13s);
  BOOST_CHECK(req.kill_grace == caf::timespan{0});
  BOOST_CHECK(req.out_cap > 0 && req.out_cap <= (64u << 10));
  BOOST_CHECK(req.err_cap > 0 && req.err_cap <= (64u << 10));
  // Each command has its own file.
  BOOST_CHECK_EQUAL(
      arg(tool->command({4242, "python3", 100, 0}, 3s), "--output"),
      temp.path() + "/pyspy.2.4242.col");
  // Whole seconds of the window, at least one.
  BOOST_CHECK_EQUAL(arg(tool->command({1, "p", 100, 0}, 2600ms), "-d"), "3");
  BOOST_CHECK_EQUAL(arg(tool->command({1, "p", 100, 0}, 100ms), "-d"), "1");
  // Not found: the option to set.
  BOOST_CHECK_EQUAL(make_pyspy_tool("py-spy", ctx, nullptr)->check(),
                    "py-spy ('py-spy', --py-spy-path) was not found: it is "
                    "not in Debian, see docs/runtime-profilers.md to install "
                    "it");
}

BOOST_FIXTURE_TEST_CASE(pyspy_frequency_is_capped_at_50, tools_fixture) {
  ctx.frequency = 500;
  auto tool = make_pyspy_tool("/opt/py-spy/py-spy", ctx, nullptr);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  auto req = tool->command({1, "python", 100, 0}, 60s);
  BOOST_CHECK_EQUAL(arg(req, "-r"), "50");
  BOOST_CHECK_EQUAL(arg(req, "-d"), "60");
  BOOST_CHECK(req.timeout == 70s);
  BOOST_CHECK_NE(tool->describe().find("50 Hz (-f 500 is above py-spy's "
                                       "limit, as in gProfiler)"),
                 std::string::npos);
  // At the limit and below it: as given, nothing said.
  for (int64_t f : {50, 49, 1}) {
    ctx.frequency = f;
    auto at = make_pyspy_tool("/opt/py-spy/py-spy", ctx, nullptr);
    BOOST_REQUIRE_EQUAL(at->check(), "");
    BOOST_CHECK_EQUAL(arg(at->command({1, "python", 100, 0}, 5s), "-r"),
                      std::to_string(f));
    BOOST_CHECK_EQUAL(at->describe().find("above"), std::string::npos);
  }
}

BOOST_FIXTURE_TEST_CASE(pyspy_output_becomes_python_stacks, tools_fixture) {
  auto tool = make_pyspy_tool("/opt/py-spy/py-spy", ctx, nullptr);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  rt::runtime_target t{5353, "python", 100, 0};
  // Upstream py-spy's output and the fork's give the same stacks: the comm
  // first, _[p] once on every frame.
  for (auto name : {"pyspy_upstream.raw", "pyspy_fork.raw"}) {
    BOOST_TEST_CONTEXT(name) {
      auto req = tool->command(t, 3s);
      auto out = arg(req, "--output");
      write_file(out, data_file(name));
      auto r = exited(0);
      auto got = tool->read({t}, req, r);
      BOOST_REQUIRE_MESSAGE(got, (got ? "" : describe(got.error())));
      BOOST_REQUIRE_EQUAL(got->size(), 1u);
      BOOST_CHECK_EQUAL((*got)[0].pid, 5353);
      BOOST_CHECK_EQUAL((*got)[0].comm, "python");
      BOOST_CHECK_EQUAL(stacks_text(*got), expected_text("pyspy.expected"));
      BOOST_CHECK(exists(out));
      tool->ended(req);
      BOOST_CHECK(!exists(out));
    }
  }
  // The process's own comm, made safe; counts add up; blank and '#' lines
  // are ignored; bad lines are skipped, the others kept.
  rt::runtime_target odd{77, "my;app", 100, 0};
  auto req = tool->command(odd, 3s);
  write_file(arg(req, "--output"),
             "# py-spy\n\nmain (/a.py:1);f (/a.py:3) 2\n"
             "main (/a.py:1)_[p];f (/a.py:3)_[p] 3\n"
             "no count here\nmain (/a.py:1) x\nmain (/a.py:1) 4\n");
  auto r = exited(0);
  auto got = tool->read({odd}, req, r);
  BOOST_REQUIRE_MESSAGE(got, (got ? "" : describe(got.error())));
  BOOST_CHECK_EQUAL(stacks_text(*got),
                    "my_app;main (/a.py:1)_[p] 4\n"
                    "my_app;main (/a.py:1)_[p];f (/a.py:3)_[p] 5\n");
  tool->ended(req);
  // Nothing sampled (--gil on a process that never holds the GIL): an empty
  // file, no stacks, no error.
  req = tool->command(t, 3s);
  write_file(arg(req, "--output"), "");
  got = tool->read({t}, req, r);
  BOOST_REQUIRE(got);
  BOOST_CHECK(got->empty());
  tool->ended(req);
}

BOOST_FIXTURE_TEST_CASE(pyspy_failures_are_errors, tools_fixture) {
  ctx.max_output = 64;
  bool running = true;
  std::vector<int32_t> asked;
  ctx.alive = [&](int32_t pid) {
    asked.push_back(pid);
    return running;
  };
  auto tool = make_pyspy_tool("/opt/py-spy/py-spy", ctx, nullptr);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  rt::runtime_target t{7, "python3", 100, 0};
  auto reason = [&](run_result r, const std::string* text) {
    auto req = tool->command(t, 3s);
    if (text)
      write_file(arg(req, "--output"), *text);
    auto got = tool->read({t}, req, r);
    tool->ended(req);
    BOOST_REQUIRE(!got);
    return message_of(got.error());
  };
  std::string garbage = "not py-spy\n\x01\x02\n";
  BOOST_CHECK_EQUAL(reason(exited(0), nullptr), "py-spy wrote no output file");
  BOOST_CHECK_NE(reason(exited(0), &garbage).find("py-spy output has no valid"),
                 std::string::npos);
  BOOST_CHECK_EQUAL(
      reason(exited(1, "\nError: Permission denied (os error 13)\nmore\n"),
             &garbage),
      "py-spy exited with status 1: Error: Permission denied (os error 13)");
  run_result killed;
  killed.term_signal = 9;
  BOOST_CHECK_EQUAL(reason(killed, nullptr), "py-spy was killed by signal 9");
  std::string big(65, 'x');
  BOOST_CHECK_EQUAL(reason(exited(0), &big),
                    "py-spy's output is 65 bytes, more than the limit of 64");
  BOOST_CHECK(asked.empty());
  // gProfiler's special case: py-spy could not find the process, and the
  // process is gone.
  const std::string gone = "Error: Failed to get process executable name. "
                           "Check that the process is running.\n";
  running = false;
  BOOST_CHECK_EQUAL(reason(exited(1, gone), nullptr),
                    "process exited before py-spy started");
  BOOST_CHECK((asked == std::vector<int32_t>{7}));
  // The same words while the process runs: py-spy's failure.
  running = true;
  BOOST_CHECK_EQUAL(reason(exited(1, gone), nullptr),
                    "py-spy exited with status 1: "
                        + gone.substr(0, gone.size() - 1));
  // Another failure of a process that is gone: py-spy's own words.
  running = false;
  BOOST_CHECK_EQUAL(
      reason(exited(1, "Error: No such file or directory\n"), nullptr),
      "py-spy exited with status 1: Error: No such file or "
      "directory");
}

BOOST_FIXTURE_TEST_CASE(pyspy_add_versions_rewrites_each_process,
                        tools_fixture) {
  // What gProfiler's _add_versions_to_process_stacks does to a frame of a
  // package: "(PATH.py:N)" becomes "(PATH.py:N [PACKAGE==VERSION])".
  std::vector<int32_t> seen;
  auto add_versions = [&](process_stacks& p) {
    seen.push_back(p.pid);
    const std::string file = "/yaml/__init__.py:34)";
    for (auto& s : p.stacks)
      for (auto at = s.stack.find(file); at != std::string::npos;
           at = s.stack.find(file, at + 1))
        s.stack.insert(at + file.size() - 1, " [PyYAML==6.0.1]");
  };
  auto tool = make_pyspy_tool("/opt/py-spy/py-spy", ctx, add_versions);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  rt::runtime_target t{5353, "python", 100, 0};
  auto req = tool->command(t, 3s);
  write_file(arg(req, "--output"), data_file("pyspy_upstream.raw"));
  auto r = exited(0);
  auto got = tool->read({t}, req, r);
  BOOST_REQUIRE_MESSAGE(got, (got ? "" : describe(got.error())));
  tool->ended(req);
  BOOST_CHECK((seen == std::vector<int32_t>{5353}));
  // The expected stacks with the version after the yaml frames, the others
  // as they were.
  auto expected = expected_text("pyspy.expected");
  size_t rewritten = 0;
  for (auto at = expected.find("/yaml/__init__.py:34)");
       at != std::string::npos;
       at = expected.find("/yaml/__init__.py:34)", at + 1), ++rewritten)
    expected.insert(at + 20, " [PyYAML==6.0.1]");
  BOOST_CHECK_EQUAL(rewritten, 2u);
  BOOST_CHECK_EQUAL(stacks_text(*got), expected);
  // No stacks, no call; an error, no call.
  req = tool->command(t, 3s);
  write_file(arg(req, "--output"), "");
  got = tool->read({t}, req, r);
  tool->ended(req);
  BOOST_REQUIRE(got);
  req = tool->command(t, 3s);
  write_file(arg(req, "--output"), "garbage\n");
  got = tool->read({t}, req, r);
  tool->ended(req);
  BOOST_REQUIRE(!got);
  BOOST_CHECK_EQUAL(seen.size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(missing_tools_say_which_option, tools_fixture) {
  opts.rbspy_path = "rbspy";
  opts.phpspy_path = "/nowhere/phpspy";
  opts.dotnet_trace_path = "dotnet-trace";
  BOOST_CHECK_EQUAL(make_ruby_tool(opts, ctx)->check(),
                    "rbspy ('rbspy', --rbspy-path) was not found: it is not "
                    "in Debian, see docs/runtime-profilers.md to install it");
  BOOST_CHECK_NE(make_php_tool(opts, compat, ctx)
                     ->check()
                     .find("phpspy ('/nowhere/phpspy', --phpspy-path) was not "
                           "found"),
                 std::string::npos);
  BOOST_CHECK_NE(make_dotnet_tool(opts, ctx)->check().find(
                     "dotnet-trace ('dotnet-trace', --dotnet-trace-path)"),
                 std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(disabled_modes_make_no_tool, tools_fixture) {
  opts.ruby_mode = "disabled";
  opts.php_mode = "disabled";
  opts.dotnet_mode = "disabled";
  BOOST_CHECK(!make_ruby_tool(opts, ctx));
  BOOST_CHECK(!make_php_tool(opts, compat, ctx));
  BOOST_CHECK(!make_dotnet_tool(opts, ctx));
  // gProfiler's defaults: Ruby on, PHP and .NET off.
  runtime_options defaults;
  BOOST_CHECK(make_ruby_tool(defaults, ctx));
  BOOST_CHECK(!make_php_tool(defaults, compat, ctx));
  BOOST_CHECK(!make_dotnet_tool(defaults, ctx));
}

BOOST_FIXTURE_TEST_CASE(phpspy_runs_once_for_all_php_processes, tools_fixture) {
  ctx.frequency = 5000;
  compat.php_proc_filter = "php-fpm|it's";
  auto tool = make_php_tool(opts, compat, ctx);
  BOOST_REQUIRE(tool);
  BOOST_CHECK_EQUAL(tool->name(), "php");
  BOOST_CHECK(tool->kind() == rt::runtime_kind::php);
  BOOST_CHECK(tool->one_child_for_all());
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  std::vector<rt::runtime_target> targets{{3101, "php-fpm8.2", 100, 0},
                                          {3102, "php-fpm8.2", 100, 0}};
  auto req = tool->command_for_all(targets, 10s);
  auto out = arg(req, "--output");
  BOOST_CHECK(out.rfind(temp.path() + "/phpspy.", 0) == 0);
  // gProfiler's arguments, the pattern quoted for phpspy's shell, the
  // frequency capped at 999, and -i to stop at the window's end.
  BOOST_CHECK((req.argv
               == strings{"/opt/phpspy/phpspy", "--verbose-fields=p", "-P",
                          "'php-fpm|it'\\''s'", "-H", "999", "-b", "16384",
                          "-T", "16", "--output", out, "-i", "10000"}));
  BOOST_REQUIRE_EQUAL(req.env.size(), 1u);
  BOOST_CHECK(req.env[0].rfind("PATH=", 0) == 0);
  BOOST_CHECK(req.env[0].size() > 18
              && req.env[0].substr(req.env[0].size() - 12) == ":/opt/phpspy");
  BOOST_CHECK(req.timeout == 20s);
}

BOOST_FIXTURE_TEST_CASE(phpspy_output_becomes_stacks_of_the_targets,
                        tools_fixture) {
  auto tool = make_php_tool(opts, compat, ctx);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  // phpspy.txt holds pids 3101 and 3102; 3101 is this window's target.
  std::vector<rt::runtime_target> targets{{3101, "php8.2", 100, 0},
                                          {3300, "php-fpm8.2", 100, 0}};
  auto req = tool->command_for_all(targets, 10s);
  auto out = arg(req, "--output");
  write_file(out, data_file("phpspy.txt"));
  auto r = exited(0);
  auto got = tool->read(targets, req, r);
  BOOST_REQUIRE_MESSAGE(got, (got ? "" : describe(got.error())));
  BOOST_REQUIRE_EQUAL(got->size(), 1u);
  BOOST_CHECK_EQUAL((*got)[0].pid, 3101);
  BOOST_CHECK_EQUAL((*got)[0].comm, "php8.2");
  // The golden stacks of 3101, under the process's own name.
  auto golden = expected_text("phpspy.expected");
  golden = golden.substr(0, golden.find("# pid"));
  std::string renamed;
  std::istringstream lines(golden);
  for (std::string line; std::getline(lines, line);)
    renamed += "php8.2" + line.substr(3) + "\n";
  BOOST_CHECK_EQUAL(stacks_text(*got), renamed);
  tool->ended(req);
  BOOST_CHECK(!exists(out));
  // Garbage is an error; so is a phpspy that failed (gProfiler's noise
  // lines left out of the reason).
  req = tool->command_for_all(targets, 10s);
  write_file(arg(req, "--output"), "garbage\n\ngarbage\n\n");
  got = tool->read(targets, req, r);
  BOOST_REQUIRE(!got);
  BOOST_CHECK_NE(message_of(got.error()).find("phpspy output has no valid"),
                 std::string::npos);
  auto failed = exited(1, "Couldn't read proc fs file\nphpspy: bad version\n");
  got = tool->read(targets, req, failed);
  BOOST_REQUIRE(!got);
  BOOST_CHECK_EQUAL(message_of(got.error()),
                    "phpspy exited with status 1: phpspy: bad version");
}

BOOST_FIXTURE_TEST_CASE(dotnet_trace_runs_as_gprofiler_runs_it, tools_fixture) {
  auto tool = make_dotnet_tool(opts, ctx);
  BOOST_REQUIRE(tool);
  BOOST_CHECK_EQUAL(tool->name(), "dotnet");
  BOOST_CHECK(tool->kind() == rt::runtime_kind::dotnet);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  auto req = tool->command({4711, "dotnet", 100, 0}, 65s);
  auto out = arg(req, "--output");
  BOOST_CHECK(out.rfind(temp.path() + "/dotnet-trace-", 0) == 0);
  BOOST_CHECK(out.find('.', temp.path().size()) == std::string::npos);
  // The pid in the target's namespace (the fixture's is pid + 1000).
  BOOST_CHECK(
      (req.argv
       == strings{"/opt/dotnet/tools/dotnet-trace", "collect", "--format",
                  "speedscope", "--process-id", "5711", "--profile",
                  "cpu-sampling", "--duration", "0:01:05", "--output", out}));
  // gProfiler's environment: the target's /tmp, DOTNET_ROOT two levels
  // above the tool.
  BOOST_CHECK(
      (req.env
       == strings{"TMPDIR=/proc/4711/root/tmp", "DOTNET_ROOT=/opt/dotnet"}));
  BOOST_CHECK(req.timeout == 125s);
  BOOST_CHECK(req.kill_grace == caf::timespan{0});
  // The agent's own DOTNET_ROOT wins.
  ctx.dotnet_root = "/usr/share/dotnet";
  auto own = make_dotnet_tool(opts, ctx);
  BOOST_REQUIRE_EQUAL(own->check(), "");
  BOOST_CHECK_EQUAL(own->command({4711, "dotnet", 100, 0}, 5s).env[1],
                    "DOTNET_ROOT=/usr/share/dotnet");
}

BOOST_FIXTURE_TEST_CASE(dotnet_trace_output_becomes_net_stacks, tools_fixture) {
  ctx.frequency = 100; // the fixture's expected counts are at 100 Hz
  auto tool = make_dotnet_tool(opts, ctx);
  BOOST_REQUIRE_EQUAL(tool->check(), "");
  rt::runtime_target t{4711, "dotnet", 100, 0};
  auto req = tool->command(t, 3s);
  auto base = arg(req, "--output");
  write_file(base + ".nettrace", "Nettrace");
  write_file(base + ".speedscope.json", data_file("dotnet.speedscope.json"));
  auto r = exited(0);
  auto got = tool->read({t}, req, r);
  BOOST_REQUIRE_MESSAGE(got, (got ? "" : describe(got.error())));
  BOOST_CHECK_EQUAL(stacks_text(*got), expected_text("dotnet.expected"));
  tool->ended(req);
  BOOST_CHECK(!exists(base + ".nettrace"));
  BOOST_CHECK(!exists(base + ".speedscope.json"));
  // Speedscope that is not dotnet-trace's is an error.
  req = tool->command(t, 3s);
  write_file(arg(req, "--output") + ".speedscope.json", "{\"profiles\": 1}");
  got = tool->read({t}, req, r);
  BOOST_CHECK(!got);
  tool->ended(req);
}

BOOST_AUTO_TEST_CASE(dotnet_durations_and_shell_quoting) {
  BOOST_CHECK_EQUAL(dotnet_duration(3), "0:00:03");
  BOOST_CHECK_EQUAL(dotnet_duration(60), "0:01:00");
  BOOST_CHECK_EQUAL(dotnet_duration(3600), "1:00:00");
  BOOST_CHECK_EQUAL(dotnet_duration(86399), "23:59:59");
  BOOST_CHECK_EQUAL(dotnet_duration(86400), "1.00:00:00");
  BOOST_CHECK_EQUAL(shell_quote("php-fpm"), "'php-fpm'");
  BOOST_CHECK_EQUAL(shell_quote("a'b"), "'a'\\''b'");
  BOOST_CHECK_EQUAL(shell_quote("$(x);`y`"), "'$(x);`y`'");
}

/// A tool with one child for all targets, whose results the test decides.
class all_at_once_tool : public scripted_tool {
public:
  std::vector<std::vector<int32_t>> commanded;
  std::string fail;

  bool one_child_for_all() const override {
    return true;
  }
  run_request command_for_all(const std::vector<rt::runtime_target>& ts,
                              caf::timespan window) override {
    lengths.push_back(window);
    std::vector<int32_t> pids;
    for (auto& t : ts)
      pids.push_back(t.pid);
    commanded.push_back(pids);
    run_request req;
    req.argv = {"tool-for-all"};
    return req;
  }
  caf::expected<std::vector<process_stacks>>
  read(const std::vector<rt::runtime_target>& ts, const run_request& req,
       run_result&) override {
    BOOST_CHECK_EQUAL(req.argv.at(0), "tool-for-all");
    if (!fail.empty())
      return make_gpa_error(ec::tool_failed, fail);
    std::vector<process_stacks> out;
    for (auto& t : ts) {
      process_stacks p;
      p.pid = t.pid;
      p.comm = t.comm;
      // The first target has stacks, the others nothing.
      if (&t == &ts.front())
        p.stacks.push_back({t.comm + ";main_[php]", 3});
      out.push_back(std::move(p));
    }
    return out;
  }
};

struct all_at_once_fixture : fixture {
  std::shared_ptr<all_at_once_tool> all = std::make_shared<all_at_once_tool>();

  all_at_once_fixture() {
    tool = all;
  }
};

BOOST_FIXTURE_TEST_CASE(one_child_covers_all_targets, all_at_once_fixture) {
  init(4);
  fx->found = {{alive_pid, "php", 100, 0},
               {gone_pid, "php", 100, 0},
               {alive_pid + 1, "php", 100, 0}};
  start(1);
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 1u);
  BOOST_CHECK((all->commanded[0]
               == std::vector<int32_t>{alive_pid, gone_pid, alive_pid + 1}));
  fx->finish(0);
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  // A target that exited is no error for such a tool (gProfiler's phpspy).
  BOOST_CHECK(replies[0].errors.empty());
  BOOST_REQUIRE_EQUAL(replies[0].processes.size(), 1u);
  BOOST_CHECK_EQUAL(replies[0].processes[0].pid, alive_pid);
  // No target: no child.
  fx->found.clear();
  start(2);
  BOOST_CHECK_EQUAL(fx->runs.size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(one_childs_failure_is_every_targets_error,
                        all_at_once_fixture) {
  init(4);
  all->fail = "phpspy output has no valid traces";
  fx->found = {{alive_pid, "php", 100, 0}, {alive_pid + 1, "php", 100, 0}};
  start(1);
  fx->finish(0);
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK_EQUAL(errors_of(replies[0]),
                    std::to_string(alive_pid)
                        + ":error:phpspy output has no valid traces|"
                        + std::to_string(alive_pid + 1)
                        + ":error:phpspy output has no valid traces|");
  // Hung: both targets time out at the deadline.
  all->fail.clear();
  start(2);
  snapshot(2);
  st.on_deadline(2);
  BOOST_REQUIRE_EQUAL(replies.size(), 2u);
  BOOST_CHECK_EQUAL(errors_of(replies[1]),
                    std::to_string(alive_pid) + ":error:timed out|"
                        + std::to_string(alive_pid + 1) + ":error:timed out|");
}

BOOST_FIXTURE_TEST_CASE(spawned_processes_join_the_child_for_all,
                        all_at_once_fixture) {
  init(4, true);
  fx->found = {{alive_pid, "php", 100, 0, 111}};
  start(1);
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 1u);
  // A PHP process starts while phpspy runs: no second child (phpspy finds
  // it itself), but it is one of the child's targets.
  fx->clock = 2s;
  fx->found.push_back({alive_pid + 1, "php", 0.5, 0, 222});
  st.on_spawn_poll(1);
  BOOST_CHECK_EQUAL(fx->runs.size(), 1u);
  fx->finish(0);
  snapshot(1);
  BOOST_REQUIRE_EQUAL(replies.size(), 1u);
  BOOST_CHECK(replies[0].errors.empty());
  // Without a child (no PHP process at the start), one for the time left.
  fx->found.clear();
  fx->clock = 0s;
  start(2);
  BOOST_CHECK_EQUAL(fx->runs.size(), 1u);
  fx->clock = 3500ms;
  fx->found = {{alive_pid + 2, "php", 0.5, 0, 333}};
  st.on_spawn_poll(2);
  BOOST_REQUIRE_EQUAL(fx->runs.size(), 2u);
  BOOST_CHECK((all->commanded.back() == std::vector<int32_t>{alive_pid + 2}));
  BOOST_CHECK(all->lengths.back() == 6s);
  // A hung child: every target it had, the spawned one too, times out.
  fx->clock = 0s;
  fx->found = {{alive_pid, "php", 100, 0, 111}};
  start(3);
  fx->clock = 2s;
  fx->found.push_back({alive_pid + 3, "php", 0.5, 0, 444});
  st.on_spawn_poll(3);
  snapshot(3);
  st.on_deadline(3);
  BOOST_REQUIRE_EQUAL(replies.size(), 2u);
  BOOST_CHECK_EQUAL(errors_of(replies[1]),
                    std::to_string(alive_pid) + ":error:timed out|"
                        + std::to_string(alive_pid + 3) + ":error:timed out|");
}

BOOST_AUTO_TEST_SUITE_END()

// -- py-spy and .NET through the real reaper, with stand-ins
// -------------------
//
// Neither py-spy nor dotnet-trace is in Debian (nor a .NET runtime on this
// machine): test/support/pyspy_standin.py and dotnet_trace_standin.py check
// gProfiler's command line (and environment) and write the tool's output for
// a real process (a sleep). The runtime profiler actor runs them through the
// real reaper and launcher for a 1 s window.

namespace {

caf::actor_system_config& real_config(caf::actor_system_config& cfg) {
  add_message_types(cfg);
  log::silence();
  return cfg;
}

/// An actor system with a real reaper, a target process (a sleep) and a
/// folder for the stand-ins' wrappers and logs.
struct real_tool_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{real_config(cfg)};
  rt::private_temp_dir temp{"/tmp"};
  rt::private_temp_dir work{"/tmp"};
  reaper_actor reaper;
  caf::scoped_actor self{sys};
  pid_t target = 0;

  real_tool_fixture() {
    reaper_config rc;
    rc.temp_dir = temp.path();
    reaper = caf::actor_cast<reaper_actor>(
        sys.spawn(process_reaper, rt::make_posix_launcher(), rc));
    target = ::fork();
    if (target == 0) {
      ::execlp("sleep", "sleep", "60", nullptr);
      ::_exit(127);
    }
    BOOST_REQUIRE(target > 0);
  }

  ~real_tool_fixture() {
    ::kill(target, SIGKILL);
    ::waitpid(target, nullptr, 0);
    self->send_exit(reaper, caf::exit_reason::user_shutdown);
  }

  /// A wrapper named `name` that runs the stand-in `script` (in
  /// test/support/) with `options` before the tool's arguments.
  std::string wrapper(const std::string& name, const std::string& script,
                      const std::string& options) {
    auto path = work.path() + "/" + name;
    write_file(path, "#!/bin/sh\nexec " + std::string{GPA_TEST_DATA_DIR}
                         + "/../support/" + script + " " + options
                         + " \"$@\"\n");
    ::chmod(path.c_str(), 0755);
    return path;
  }

  /// The context of a tool that writes into `temp`, at 11 Hz.
  tool_context context() {
    tool_context ctx;
    ctx.temp_dir = temp.path();
    ctx.fs = rt::make_posix_file_system();
    ctx.frequency = 11;
    return ctx;
  }

  /// One 1 s window of a runtime profiler with `tool` whose target is the
  /// sleep, its snapshot given `budget`.
  profile_part window(std::shared_ptr<runtime_tool> tool,
                      caf::timespan budget = 20s) {
    runtime_target_source source;
    auto pid = static_cast<int32_t>(target);
    source.find = [pid] {
      return std::vector<rt::runtime_target>{{pid, "sleep", 100, 0}};
    };
    source.alive = [](int64_t p) {
      return rt::process_exists(p);
    };
    auto actor = sys.spawn(gpa::runtime_profiler, runtime_config{},
                           std::move(tool), source, reaper);
    self->request(actor, caf::infinite, prepare_atom_v)
        .receive(
            [](std::string& status) {
              BOOST_CHECK_EQUAL(status, "");
            },
            [](caf::error& err) {
              BOOST_FAIL(describe(err));
            });
    window_info w;
    w.snapshot_id = 1;
    w.duration = 1s;
    self->send(actor, start_atom_v, w);
    std::this_thread::sleep_for(1s);
    snapshot_request req;
    req.snapshot_id = 1;
    req.budget = budget;
    profile_part part;
    self->request(actor, caf::infinite, snapshot_atom_v, req)
        .receive(
            [&](profile_part& p) {
              part = std::move(p);
            },
            [](caf::error& err) {
              BOOST_FAIL(describe(err));
            });
    self->send_exit(actor, caf::exit_reason::user_shutdown);
    return part;
  }

  /// The files named PREFIX... in `temp` are removed once the tool has
  /// ended.
  bool no_files_left(const std::string& prefix) {
    for (int i = 0; i < 50; ++i) {
      auto fs = rt::make_posix_file_system();
      auto left = fs->list(temp.path(), prefix);
      if (left && left->empty())
        return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
};

struct dotnet_real_fixture : real_tool_fixture {
  /// A dotnet-trace that runs the stand-in with `options`.
  std::string standin(const std::string& options) {
    return wrapper("dotnet-trace", "dotnet_trace_standin.py", options);
  }

  /// One 1 s window of a .NET profiler whose dotnet-trace is `tool`.
  profile_part window(const std::string& tool) {
    runtime_options opts;
    opts.dotnet_mode = "dotnet-trace";
    opts.dotnet_trace_path = tool;
    return real_tool_fixture::window(make_dotnet_tool(opts, context()));
  }

  bool no_files_left() {
    return real_tool_fixture::no_files_left("dotnet-trace-");
  }
};

struct pyspy_real_fixture : real_tool_fixture {
  std::string calls = work.path() + "/calls";

  /// A py-spy that runs the stand-in with `options`, its calls logged.
  std::string standin(const std::string& options = {}) {
    return wrapper("py-spy", "pyspy_standin.py",
                   "--standin-log=" + calls + " " + options);
  }

  /// The stand-in's calls: each one's JSON line.
  std::vector<std::string> logged() {
    std::ifstream in(calls);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(runtime_tools_real)

BOOST_FIXTURE_TEST_CASE(pyspy_standin_gives_python_frames, pyspy_real_fixture) {
  std::vector<int32_t> versioned;
  auto tool = make_pyspy_tool(standin(), context(), [&](process_stacks& p) {
    versioned.push_back(p.pid);
  });
  auto part = window(std::move(tool));
  BOOST_CHECK_EQUAL(part.profiler, "python");
  BOOST_CHECK_MESSAGE(part.errors.empty(),
                      (part.errors.empty() ? "" : part.errors[0].reason));
  BOOST_REQUIRE_EQUAL(part.processes.size(), 1u);
  auto& p = part.processes[0];
  BOOST_CHECK_EQUAL(p.pid, target);
  BOOST_CHECK_EQUAL(p.comm, "sleep");
  // 1 s at 11 Hz over the stand-in's two stacks, one written as upstream
  // py-spy writes it, one as the fork: the same shape, the comm first.
  BOOST_REQUIRE_EQUAL(p.stacks.size(), 2u);
  BOOST_CHECK_EQUAL(p.stacks[0].stack,
                    "sleep;<module> (sleep:1)_[p];idle (sleep:9)_[p]");
  BOOST_CHECK_EQUAL(p.stacks[0].count, 5u);
  BOOST_CHECK_EQUAL(p.stacks[1].stack,
                    "sleep;<module> (sleep:1)_[p];work (sleep:5)_[p]");
  BOOST_CHECK_EQUAL(p.stacks[1].count, 6u);
  BOOST_CHECK((versioned == std::vector<int32_t>{target}));
  // The stand-in saw gProfiler's arguments (it refuses others).
  auto lines = logged();
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  auto pid = std::to_string(target);
  BOOST_CHECK_NE(lines[0].find("[\"record\", \"-r\", \"11\", \"-d\", \"1\", "
                               "\"--nonblocking\", \"--format\", \"raw\", "
                               "\"-F\", \"--output\", \""
                               + temp.path() + "/pyspy.1." + pid
                               + ".col\", \"-p\", \"" + pid
                               + "\", \"--full-filenames\", \"--gil\"]"),
                 std::string::npos);
  BOOST_CHECK(no_files_left("pyspy."));
}

BOOST_FIXTURE_TEST_CASE(pyspy_stacks_from_a_file, pyspy_real_fixture) {
  // Stacks the test chooses, alternately upstream's and the fork's style.
  auto stacks = work.path() + "/stacks";
  write_file(stacks, "<module> (/srv/app.py:1);serve (/srv/app.py:40)\n"
                     "<module> (/srv/app.py:1);serve (/srv/app.py:40);"
                     "handle (/srv/views.py:12)\n"
                     "<module> (/srv/app.py:1)\n");
  auto part = window(make_pyspy_tool(standin("--standin-stacks=" + stacks),
                                     context(), nullptr));
  BOOST_CHECK(part.errors.empty());
  BOOST_REQUIRE_EQUAL(part.processes.size(), 1u);
  std::string got;
  for (auto& s : part.processes[0].stacks)
    got += s.stack + " " + std::to_string(s.count) + "\n";
  BOOST_CHECK_EQUAL(got, "sleep;<module> (/srv/app.py:1)_[p] 3\n"
                         "sleep;<module> (/srv/app.py:1)_[p];serve "
                         "(/srv/app.py:40)_[p] 4\n"
                         "sleep;<module> (/srv/app.py:1)_[p];serve "
                         "(/srv/app.py:40)_[p];handle (/srv/views.py:12)_[p] "
                         "4\n");
}

BOOST_FIXTURE_TEST_CASE(pyspy_failures_are_error_stacks, pyspy_real_fixture) {
  // Garbage in the output file.
  auto part = window(
      make_pyspy_tool(standin("--standin-mode=garbage"), context(), nullptr));
  BOOST_CHECK(part.processes.empty());
  BOOST_REQUIRE_EQUAL(part.errors.size(), 1u);
  BOOST_CHECK_EQUAL(part.errors[0].pid, target);
  BOOST_CHECK_EQUAL(part.errors[0].comm, "sleep");
  BOOST_CHECK_EQUAL(part.errors[0].what, "error");
  BOOST_CHECK_NE(part.errors[0].reason.find("py-spy output has no valid stack "
                                            "line"),
                 std::string::npos);
  BOOST_CHECK(no_files_left("pyspy."));
  // py-spy's "process is not running" about a process that runs: its
  // failure, with its message from stderr.
  part = window(
      make_pyspy_tool(standin("--standin-mode=exited"), context(), nullptr));
  BOOST_REQUIRE_EQUAL(part.errors.size(), 1u);
  BOOST_CHECK_EQUAL(part.errors[0].reason,
                    "py-spy exited with status 1: Error: Failed to get "
                    "process executable name. Check that the process is "
                    "running.");
  // Wrong arguments (what the stand-in says of a py-spy run otherwise than
  // gProfiler runs it) would be a failure too: the stand-in refuses them.
  auto odd = wrapper("py-spy-odd", "pyspy_standin.py", "record --idle");
  part = window(make_pyspy_tool(odd, context(), nullptr));
  BOOST_REQUIRE_EQUAL(part.errors.size(), 1u);
  BOOST_CHECK_NE(part.errors[0].reason.find("py-spy exited with status 2: "
                                            "error: unexpected arguments"),
                 std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(hung_pyspy_is_killed_at_its_timeout,
                        pyspy_real_fixture) {
  // A py-spy that ignores SIGTERM and never ends: killed (SIGKILL) by the
  // reaper at the window plus 10 s, its target's error "timed out". The
  // snapshot's budget is longer, so the tool's own timeout acts.
  auto started = std::chrono::steady_clock::now();
  auto part = window(
      make_pyspy_tool(standin("--standin-mode=hang"), context(), nullptr), 30s);
  auto took = std::chrono::steady_clock::now() - started;
  BOOST_CHECK(part.processes.empty());
  BOOST_REQUIRE_EQUAL(part.errors.size(), 1u);
  BOOST_CHECK_EQUAL(part.errors[0].reason, "timed out");
  BOOST_CHECK(took >= 11s);
  BOOST_CHECK(took < 25s);
  // The stand-in is gone.
  auto lines = logged();
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  auto at = lines[0].find("\"pid\": ");
  BOOST_REQUIRE(at != std::string::npos);
  auto standin_pid = std::stoi(lines[0].substr(at + 7));
  BOOST_CHECK(!rt::process_exists(standin_pid));
  BOOST_CHECK(no_files_left("pyspy."));
}

BOOST_FIXTURE_TEST_CASE(dotnet_trace_standin_gives_net_frames,
                        dotnet_real_fixture) {
  auto calls = work.path() + "/calls";
  auto part = window(standin("--standin-log=" + calls));
  BOOST_CHECK_EQUAL(part.profiler, "dotnet");
  BOOST_CHECK_MESSAGE(part.errors.empty(),
                      (part.errors.empty() ? "" : part.errors[0].reason));
  BOOST_REQUIRE_EQUAL(part.processes.size(), 1u);
  auto& p = part.processes[0];
  BOOST_CHECK_EQUAL(p.pid, target);
  BOOST_REQUIRE_EQUAL(p.stacks.size(), 1u);
  auto pid = std::to_string(target);
  // 1 s of CPU_TIME at 11 Hz, the marker left out, _[net] on every frame.
  BOOST_CHECK_EQUAL(p.stacks[0].stack,
                    "sleep;Process64 Process(" + pid + ") (" + pid
                        + ") Args: _[net];(Non-Activities)_[net];Threads_[net];"
                          "Thread ("
                        + pid
                        + ")_[net];sleep!Program.Main()_[net];sleep!Program."
                          "Fib(int32)_[net]");
  BOOST_CHECK_EQUAL(p.stacks[0].count, 11u);
  // The stand-in saw gProfiler's arguments (it refuses others) and
  // environment.
  std::ifstream in(calls);
  std::string line;
  BOOST_REQUIRE(std::getline(in, line));
  BOOST_CHECK_NE(line.find("\"--duration\", \"0:00:01\""), std::string::npos);
  BOOST_CHECK_NE(line.find("\"TMPDIR\": \"/proc/" + pid + "/root/tmp\""),
                 std::string::npos);
  BOOST_CHECK(no_files_left());
}

BOOST_FIXTURE_TEST_CASE(dotnet_trace_garbage_is_an_error_stack,
                        dotnet_real_fixture) {
  auto part = window(standin("--standin-mode=garbage"));
  BOOST_CHECK(part.processes.empty());
  BOOST_REQUIRE_EQUAL(part.errors.size(), 1u);
  BOOST_CHECK_EQUAL(part.errors[0].pid, target);
  BOOST_CHECK_EQUAL(part.errors[0].comm, "sleep");
  BOOST_CHECK_NE(part.errors[0].reason.find("profile"), std::string::npos);
  BOOST_CHECK(no_files_left());
}

BOOST_AUTO_TEST_SUITE_END()
