#pragma once

// The central list of every message type the agent's actors exchange, with
// its CAF type ID. The project compiles with CAF_ENABLE_TYPE_ID_CHECKS, so a
// message element without an entry here is a compile error.
//
// Each protocol header (reaper.hpp, profiler.hpp, ...) defines the structs
// declared here, their `inspect` overloads and the `typed_actor` alias.

#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

namespace gpa {

// -- reaper protocol (messages/reaper.hpp) --

struct run_request;
struct run_result;
struct child_exit;
struct reaper_stats;
struct child_list;

// -- profiles (messages/profile.hpp) --

struct profile_part;
struct profile;

// -- scheduler and profilers (messages/scheduler.hpp) --

struct window_info;
struct snapshot_request;
struct merge_job;
struct merge_summary;
struct scheduler_stats;

// -- memory monitor (messages/monitor.hpp) --

struct child_usage;
struct pressure_event;
struct resource_sample;
struct usage_range;
struct window_stats;

// -- controller (messages/control.hpp) --

struct control_command;
struct controller_stats;

// -- uploader (messages/uploader.hpp) --

struct uploader_stats;
struct upload_result;

} // namespace gpa

CAF_BEGIN_TYPE_ID_BLOCK(gpa, caf::first_custom_type_id)

// -- reaper
CAF_ADD_TYPE_ID(gpa, (gpa::run_request))
CAF_ADD_TYPE_ID(gpa, (gpa::run_result))
CAF_ADD_TYPE_ID(gpa, (gpa::child_exit))
CAF_ADD_TYPE_ID(gpa, (gpa::reaper_stats))
CAF_ADD_TYPE_ID(gpa, (gpa::child_list))

// -- profiles
CAF_ADD_TYPE_ID(gpa, (gpa::profile_part))
CAF_ADD_TYPE_ID(gpa, (gpa::profile))

// -- scheduler and profilers
CAF_ADD_TYPE_ID(gpa, (gpa::window_info))
CAF_ADD_TYPE_ID(gpa, (gpa::snapshot_request))
CAF_ADD_TYPE_ID(gpa, (gpa::merge_job))
CAF_ADD_TYPE_ID(gpa, (gpa::merge_summary))
CAF_ADD_TYPE_ID(gpa, (gpa::scheduler_stats))

// -- memory monitor (its actor handles are at the end: they name atoms)
CAF_ADD_TYPE_ID(gpa, (gpa::pressure_event))
CAF_ADD_TYPE_ID(gpa, (gpa::resource_sample))
CAF_ADD_TYPE_ID(gpa, (gpa::window_stats))

// -- controller
CAF_ADD_TYPE_ID(gpa, (gpa::control_command))
CAF_ADD_TYPE_ID(gpa, (gpa::controller_stats))

// -- uploader
CAF_ADD_TYPE_ID(gpa, (gpa::uploader_stats))
CAF_ADD_TYPE_ID(gpa, (gpa::upload_result))

// -- atoms (at most 10 characters; prefixed so none equals one of CAF's)
CAF_ADD_ATOM(gpa, gpa, run_atom, "gpa_run")
CAF_ADD_ATOM(gpa, gpa, signal_atom, "gpa_signal")
CAF_ADD_ATOM(gpa, gpa, cancel_atom, "gpa_cancel")
CAF_ADD_ATOM(gpa, gpa, stats_atom, "gpa_stats")
CAF_ADD_ATOM(gpa, gpa, deadline_atom, "gpa_dline")
CAF_ADD_ATOM(gpa, gpa, kill_atom, "gpa_kill")
CAF_ADD_ATOM(gpa, gpa, shutdown_atom, "gpa_shutdn")
CAF_ADD_ATOM(gpa, gpa, snapshot_atom, "gpa_snap")
CAF_ADD_ATOM(gpa, gpa, merge_atom, "gpa_merge")
CAF_ADD_ATOM(gpa, gpa, write_atom, "gpa_write")
CAF_ADD_ATOM(gpa, gpa, upload_atom, "gpa_upload")
CAF_ADD_ATOM(gpa, gpa, tick_atom, "gpa_tick")
CAF_ADD_ATOM(gpa, gpa, sample_atom, "gpa_sample")
CAF_ADD_ATOM(gpa, gpa, pressure_atom, "gpa_press")
CAF_ADD_ATOM(gpa, gpa, subscribe_atom, "gpa_sub")
CAF_ADD_ATOM(gpa, gpa, start_atom, "gpa_start")
CAF_ADD_ATOM(gpa, gpa, done_atom, "gpa_done")
CAF_ADD_ATOM(gpa, gpa, list_atom, "gpa_list")
CAF_ADD_ATOM(gpa, gpa, prepare_atom, "gpa_prep")
CAF_ADD_ATOM(gpa, gpa, poll_atom, "gpa_poll")
CAF_ADD_ATOM(gpa, gpa, restart_atom, "gpa_restrt")
CAF_ADD_ATOM(gpa, gpa, command_atom, "gpa_cmd")
CAF_ADD_ATOM(gpa, gpa, reload_atom, "gpa_reload")
CAF_ADD_ATOM(gpa, gpa, finish_atom, "gpa_finish")

// -- memory monitor: atoms and actor handles
CAF_ADD_ATOM(gpa, gpa, window_atom, "gpa_window")

namespace gpa {

/// Anything that acts on memory pressure (see messages/monitor.hpp).
using pressure_listener_actor
    = caf::typed_actor<caf::reacts_to<pressure_atom, pressure_event>>;

/// Anything that wants every footprint sample (see messages/monitor.hpp).
using sample_listener_actor
    = caf::typed_actor<caf::reacts_to<sample_atom, resource_sample>>;

} // namespace gpa

CAF_ADD_TYPE_ID(gpa, (gpa::pressure_listener_actor))
CAF_ADD_TYPE_ID(gpa, (gpa::sample_listener_actor))

CAF_END_TYPE_ID_BLOCK(gpa)
