// The scheduler alone, in simulated time: scripted profilers (that answer,
// fail, or never answer until told), a merger that records what it gets and
// a reaper that records cancellations. The cadence, deadlines, the overlap
// policies, late parts, back-off, memory pressure and one-shot runs.

#include <boost/test/unit_test.hpp>

#include <map>

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/scheduler.hpp"
#include "test/support/fixture.hpp"

using namespace std::chrono_literals;
using namespace gpa;

namespace {

/// How a scripted profiler answers the snapshot of a window.
enum class answer { part, fail, never };

/// What a scripted profiler saw and what it is told to do.
struct profiler_script {
  std::vector<uint64_t> started;
  std::vector<snapshot_request> asked;
  /// The answer per snapshot (default: a part).
  std::map<uint64_t, answer> answers;
  /// Promises of snapshots answered `never`, to deliver late.
  std::map<uint64_t, caf::typed_response_promise<profile_part>> held;
};

/// A scripted profiler also takes (done_atom, id): deliver the held part of
/// snapshot `id` now (late).
using scripted_impl
    = profiler_actor::extend<caf::reacts_to<done_atom, uint64_t>>;

scripted_impl::behavior_type
scripted_profiler(scripted_impl::pointer self,
                  std::shared_ptr<profiler_script> s) {
  return {
      [s](done_atom, uint64_t id) {
        s->held.at(id).deliver(profile_part{});
      },
      [](prepare_atom) {
        return std::string{};
      },
      [s](start_atom, const window_info& info) {
        s->started.push_back(info.snapshot_id);
      },
      [self, s](snapshot_atom, const snapshot_request& req) {
        s->asked.push_back(req);
        auto rp = self->make_response_promise<profile_part>();
        profile_part part;
        part.snapshot_id = req.snapshot_id;
        auto a = s->answers.count(req.snapshot_id) ? s->answers[req.snapshot_id]
                                                   : answer::part;
        switch (a) {
          case answer::part:
            part.processes.push_back({1, "app", "", {{"app;main", 3}}});
            rp.deliver(std::move(part));
            break;
          case answer::fail:
            part.errors.push_back({0, "p", "failed", "scripted failure"});
            rp.deliver(std::move(part));
            break;
          case answer::never: s->held[req.snapshot_id] = rp; break;
        }
        return rp;
      },
  };
}

struct merged_log {
  std::vector<merge_job> jobs;
};

merger_actor::behavior_type recording_merger(merger_actor::pointer,
                                             std::shared_ptr<merged_log> m) {
  return {
      [m](merge_atom, merge_job& job) {
        merge_summary s;
        s.snapshot_id = job.snapshot_id;
        m->jobs.push_back(std::move(job));
        return s;
      },
      [](pressure_atom, const pressure_event&) {},
  };
}

reaper_actor::behavior_type
recording_reaper(reaper_actor::pointer,
                 std::shared_ptr<std::vector<std::string>> cancels) {
  return {
      [](run_atom, const run_request&) {
        return run_result{};
      },
      [](signal_atom, const std::string&, int32_t) {
        return uint32_t{0};
      },
      [cancels](cancel_atom, const std::string& tag) {
        cancels->push_back(tag);
        return uint32_t{1};
      },
      [](stats_atom) {
        return reaper_stats{};
      },
      [](list_atom, const std::string&) {
        return child_list{};
      },
  };
}

struct scheduler_fixture : gpa::test::sim_fixture {
  std::shared_ptr<profiler_script> p = std::make_shared<profiler_script>();
  std::shared_ptr<merged_log> merged = std::make_shared<merged_log>();
  std::shared_ptr<std::vector<std::string>> cancels
      = std::make_shared<std::vector<std::string>>();
  scheduler_actor sched_actor;
  scripted_impl profiler;
  bool done = false;

  void start(scheduler_config cfg = config()) {
    cfg.on_done = [this] {
      done = true;
    };
    std::vector<profiler_slot> slots(1);
    slots[0].name = "p";
    profiler = sys.spawn(scripted_profiler, p);
    slots[0].handle = caf::actor_cast<profiler_actor>(profiler);
    auto merger = sys.spawn(recording_merger, merged);
    auto reaper = sys.spawn(recording_reaper, cancels);
    sched_actor = caf::actor_cast<scheduler_actor>(
        sys.spawn(scheduler, cfg, slots, merger, reaper, nullptr));
    caf::anon_send(sched_actor, start_atom_v);
    run();
  }

  static scheduler_config config() {
    scheduler_config cfg;
    cfg.opts.duration = 10s;
    cfg.opts.profiler_grace = 2s;
    cfg.opts.continuous = true;
    cfg.opts.backoff_after_failures = 2;
    cfg.opts.backoff_max_snapshots = 4;
    cfg.wall_clock_ms = [] {
      return int64_t{1'000'000};
    };
    return cfg;
  }

  scheduler_stats stats() {
    auto r = request<scheduler_stats>(sched_actor, stats_atom_v);
    run();
    BOOST_REQUIRE(r->value);
    return *r->value;
  }

  /// The error "what" of profiler p's entry in merge job `i`, or "" if it
  /// gave stacks.
  std::string entry(size_t i) {
    auto& job = merged->jobs.at(i);
    BOOST_REQUIRE_EQUAL(job.parts.size(), 1u);
    auto& part = job.parts[0];
    return part.errors.empty() ? std::string{} : part.errors[0].what;
  }

  ~scheduler_fixture() override {
    caf::anon_send_exit(sched_actor, caf::exit_reason::user_shutdown);
    run();
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(scheduler_sim)

BOOST_FIXTURE_TEST_CASE(windows_follow_the_cadence_without_gaps,
                        scheduler_fixture) {
  start();
  BOOST_CHECK((p->started == std::vector<uint64_t>{1}));
  advance(10s);
  advance(10s);
  advance(10s);
  BOOST_REQUIRE_EQUAL(merged->jobs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    auto& job = merged->jobs[i];
    BOOST_CHECK_EQUAL(job.snapshot_id, i + 1);
    // Each window starts where the previous one ended.
    BOOST_CHECK_EQUAL(job.start_ms, 1'000'000 + 10'000 * int64_t(i));
    BOOST_CHECK_EQUAL(job.end_ms, job.start_ms + 10'000);
    BOOST_CHECK_EQUAL(entry(i), "");
  }
  BOOST_CHECK_EQUAL(p->asked.at(0).tag, "snap-1/p");
  BOOST_CHECK(p->asked.at(0).budget == 2s);
  BOOST_CHECK((p->started == std::vector<uint64_t>{1, 2, 3, 4}));
  auto st = stats();
  BOOST_CHECK_EQUAL(st.snapshots_done, 3u);
  BOOST_CHECK_EQUAL(st.recording, 1u);
  BOOST_CHECK_EQUAL(st.incomplete, 0u);
}

BOOST_FIXTURE_TEST_CASE(a_laggard_is_cut_at_its_deadline_and_its_part_dropped,
                        scheduler_fixture) {
  p->answers[1] = answer::never;
  start();
  advance(10s);
  BOOST_CHECK(merged->jobs.empty());
  BOOST_CHECK_EQUAL(stats().collecting, 1u);
  advance(2s);
  BOOST_REQUIRE_EQUAL(merged->jobs.size(), 1u);
  BOOST_CHECK_EQUAL(entry(0), "timed out");
  BOOST_CHECK((*cancels == std::vector<std::string>{"snap-1/p"}));
  // The part that comes after the cut is dropped, not merged twice.
  caf::anon_send(profiler, done_atom_v, uint64_t{1});
  run();
  auto st = stats();
  BOOST_CHECK_EQUAL(st.late_parts, 1u);
  BOOST_CHECK_EQUAL(st.timeouts, 1u);
  BOOST_CHECK_EQUAL(merged->jobs.size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(overlap_cut_ends_the_collecting_snapshot_at_the_tick,
                        scheduler_fixture) {
  auto cfg = config();
  cfg.opts.profiler_grace = 30s; // longer than a window
  p->answers[1] = answer::never;
  start(cfg);
  advance(10s);
  advance(10s); // snapshot 1 still collects: cut
  BOOST_REQUIRE_GE(merged->jobs.size(), 1u);
  BOOST_CHECK_EQUAL(merged->jobs[0].snapshot_id, 1u);
  BOOST_CHECK_EQUAL(entry(0), "timed out");
  BOOST_CHECK_EQUAL(stats().ticks_skipped, 0u);
}

BOOST_FIXTURE_TEST_CASE(overlap_skip_extends_the_window_instead,
                        scheduler_fixture) {
  auto cfg = config();
  cfg.opts.profiler_grace = 30s;
  cfg.opts.overlap = overlap_policy::skip;
  p->answers[1] = answer::never;
  start(cfg);
  advance(10s);
  advance(10s); // skipped: window 2 goes on
  auto st = stats();
  BOOST_CHECK_EQUAL(st.ticks_skipped, 1u);
  BOOST_CHECK(merged->jobs.empty());
  // Snapshot 1 keeps its deadline (30 s after its window).
  advance(20s);
  BOOST_REQUIRE_GE(merged->jobs.size(), 1u);
  BOOST_CHECK_EQUAL(merged->jobs[0].snapshot_id, 1u);
  // Window 2 was extended: it spans two window lengths or more.
  advance(10s);
  BOOST_REQUIRE_GE(merged->jobs.size(), 2u);
  BOOST_CHECK_GE(merged->jobs[1].end_ms - merged->jobs[1].start_ms, 20'000);
}

BOOST_FIXTURE_TEST_CASE(a_failing_profiler_backs_off_and_says_why,
                        scheduler_fixture) {
  for (uint64_t id = 1; id <= 20; ++id)
    p->answers[id] = answer::fail;
  start();
  for (int i = 0; i < 6; ++i)
    advance(10s);
  // Two failures: it rests one window (window 3 was open already when the
  // second failure came in, so window 4 is the one), fails window 3 too and
  // rests two more (5 and 6). Each resting window's entry says why, with
  // the kind of the failures.
  BOOST_REQUIRE_GE(merged->jobs.size(), 6u);
  BOOST_CHECK_EQUAL(p->asked.size(), 3u);
  BOOST_CHECK((p->started == std::vector<uint64_t>{1, 2, 3, 7}));
  for (size_t i = 0; i < 6; ++i)
    BOOST_CHECK_EQUAL(entry(i), "failed");
  for (size_t i = 3; i < 6; ++i)
    BOOST_CHECK(merged->jobs[i].parts[0].errors[0].reason.find("backing off")
                == 0);
}

BOOST_FIXTURE_TEST_CASE(critical_pressure_skips_runtime_profilers,
                        scheduler_fixture) {
  // The profiler here is not a runtime profiler: it keeps recording; the
  // emergency cuts a laggard at once.
  p->answers[1] = answer::never;
  start();
  advance(10s);
  pressure_event ev;
  ev.level = pressure_level::emergency;
  ev.actions_due = 0xff;
  caf::anon_send(sched_actor, pressure_atom_v, ev);
  run();
  BOOST_REQUIRE_EQUAL(merged->jobs.size(), 1u);
  BOOST_CHECK_EQUAL(entry(0), "timed out");
  BOOST_CHECK(merged->jobs[0].parts[0].errors[0].reason.find("memory emergency")
              != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(one_shot_is_done_after_its_only_merge,
                        scheduler_fixture) {
  auto cfg = config();
  cfg.opts.continuous = false;
  start(cfg);
  advance(10s);
  BOOST_CHECK(done);
  BOOST_CHECK_EQUAL(merged->jobs.size(), 1u);
  advance(30s);
  BOOST_CHECK_EQUAL(merged->jobs.size(), 1u);
  BOOST_CHECK((p->started == std::vector<uint64_t>{1}));
}

BOOST_AUTO_TEST_SUITE_END()
