#pragma once

// Turns the output of the runtime profilers that gProfiler runs as separate
// tools (rbspy for Ruby, py-spy for Python, phpspy for PHP, dotnet-trace for
// .NET, and async-profiler's collapsed output for Java) into collapsed stacks
// per process, with gProfiler's frame names and suffixes. Pure functions: the
// caller runs the tool, reads its output with a bounded read and passes the
// text here.
//
// What each parser expects is the output of the tool run as gProfiler runs
// it (see docs/runtime-profilers.md for the exact command lines):
//
// - rbspy: `rbspy record --silent -r F -d D --nonblocking --oncpu
//   --format=collapsed --file OUT --raw-file /dev/null -p PID`. One line per
//   distinct stack, "frame;frame;...;frame COUNT", root frame first. A frame
//   is "NAME - PATH:LINE" (newer rbspy: "NAME - PATH" without a line).
//   gProfiler's rbspy (Granulate's fork) appends `_[rb]` to every frame whose
//   name does not contain "[c function]"; upstream rbspy appends nothing. The
//   parser makes both look like the fork's: it appends `_[rb]` to every frame
//   that has no `_[rb]` suffix yet and does not contain "[c function]".
// - py-spy: `py-spy record -r F -d D --nonblocking --format raw -F --output
//   OUT -p PID --full-filenames --gil`. The same line format as rbspy's, one
//   line per distinct stack, root frame first; a frame is "NAME (PATH:LINE)"
//   (-F: LINE is the function's first line), "NAME (PATH)" when py-spy knows
//   no line, or "NAME" alone. gProfiler's py-spy (Granulate's fork) ends
//   every frame with `_[p]`; upstream py-spy appends nothing. The parser
//   makes both look like the fork's: it appends `_[p]` to every frame that
//   does not end with it.
// - phpspy: `phpspy --verbose-fields=p -P FILTER -H F -b 16384 -T 16
//   --output OUT` (Granulate's fork). One trace per sample, frames leaf
//   first, "DEPTH CLASS::FUNCTION FILE:LINE" with DEPTH counting from 0, then
//   "# pid = PID", then an empty line. Every frame gets `_[php]`; the comm is
//   "php" for every process, as in gProfiler (phpspy does not print comms).
// - dotnet-trace: `dotnet-trace collect --format speedscope --process-id PID
//   --profile cpu-sampling --duration HH:MM:SS --output OUT`, which writes
//   OUT.speedscope.json: speedscope's JSON with one "evented" profile (unit
//   "milliseconds") per thread, "O"/"C" events that open and close frames of
//   "shared.frames". Every frame name gets `_[net]`.
// - async-profiler: its `collapsed` output with gProfiler's `ann,sig`
//   options, which annotates the frames itself (`_[j]`, `_[i]`, `_[k]`), so
//   the frames are kept as they are.
//
// Rules common to all (gProfiler's, made exact):
//
// - Stacks are "COMM;frame;...;frame", root frame first, COMM being the
//   process's comm passed by the caller ("php" for phpspy). Names are made
//   safe for the format as in sanitize_frame() (';' becomes '_', control
//   characters and NULs become spaces) and invalid UTF-8 becomes U+FFFD. An
//   empty comm becomes "[unknown]".
// - A line or stack that gProfiler would skip (and log) is skipped and
//   counted in `skipped`, with the first one described in `first_skipped`.
//   An output that is not empty but yields no stack at all (garbage, or a
//   truncated output with nothing complete in it) is an error; so is any
//   structural fault of a speedscope file (gProfiler fails the whole profile
//   on those).
// - Hostile input never crashes the parser and cannot grow memory without
//   bound: input longer than `max_input` is an error, lines longer than
//   `max_line` and stacks deeper than `max_frames` are skipped (an error for
//   speedscope), more than `max_unique_stacks` distinct stacks is an error.
// - Error and skip descriptions name what was wrong and where ("line 12:
//   ...", or "byte 5023 (line 1, column 5024): ..." for JSON), quote at most
//   a few dozen bytes of the offending text, and are themselves safe as a
//   frame (no ';', no control characters, valid UTF-8), so that the caller
//   can put them in gProfiler's error stack
//   "COMM;[Profiling <what>: <reason>]".

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "format/profile.hpp"

namespace gpa::format {

/// The frame suffixes gProfiler uses for the runtimes' own frames.
inline constexpr std::string_view ruby_frame_suffix = "_[rb]";
inline constexpr std::string_view python_frame_suffix = "_[p]";
inline constexpr std::string_view php_frame_suffix = "_[php]";
inline constexpr std::string_view dotnet_frame_suffix = "_[net]";

/// The comm gProfiler gives every PHP process's stacks.
inline constexpr std::string_view php_comm = "php";

/// Limits that keep hostile tool output from growing memory without bound.
struct runtime_parse_limits {
  /// Longer input is an error (the caller reads at most this much).
  size_t max_input = size_t{256} << 20;
  /// A longer line is skipped (collapsed, phpspy).
  size_t max_line = size_t{1} << 20;
  /// A stack with more frames is skipped (collapsed, phpspy) or an error
  /// (speedscope).
  size_t max_frames = 16384;
  /// More distinct stacks than this is an error.
  size_t max_unique_stacks = size_t{1} << 20;
  /// A larger count on a collapsed line is skipped.
  uint64_t max_count = 1000000000;
};

/// What one tool's output gave.
struct runtime_stacks {
  /// The stacks per process, sorted by pid; each process's stacks sorted by
  /// text, equal texts merged. One process for the per-process tools
  /// (rbspy, dotnet-trace, async-profiler), any number for phpspy. Empty if
  /// the tool saw no samples, and on error.
  std::vector<process_stacks> processes;
  /// Empty on success; else why the output cannot be used, and where.
  std::string error;
  /// Samples in `processes` (sum of the counts).
  uint64_t samples = 0;
  /// Lines (collapsed) or stacks (phpspy) skipped as gProfiler skips them.
  uint64_t skipped = 0;
  /// The first skipped one: where and why. Empty if none.
  std::string first_skipped;

  bool ok() const noexcept {
    return error.empty();
  }
};

/// rbspy's `--format=collapsed` output of process `pid`, whose comm is
/// `comm`. Blank lines and lines starting with '#' are ignored; a line
/// whose last space-separated token is not a positive decimal count, or
/// whose stack is empty, is skipped.
runtime_stacks parse_rbspy(std::string_view text, int32_t pid,
                           std::string_view comm,
                           const runtime_parse_limits& limits = {});

/// py-spy's `--format raw` output of process `pid`, whose comm is `comm`
/// (same line rules as parse_rbspy(); every frame ends with `_[p]`).
runtime_stacks parse_pyspy(std::string_view text, int32_t pid,
                           std::string_view comm,
                           const runtime_parse_limits& limits = {});

/// async-profiler's `collapsed` output of process `pid` (same line rules as
/// parse_rbspy(), frames kept as they are).
runtime_stacks parse_async_profiler(std::string_view text, int32_t pid,
                                    std::string_view comm,
                                    const runtime_parse_limits& limits = {});

/// phpspy's output with `--verbose-fields=p`, all processes in one text.
/// The text is cut at every "\n\n"; each piece is one trace: frame lines
/// "DEPTH REST" whose DEPTH equals their position (0 first), then the line
/// "# pid = PID". A piece that does not have that shape is skipped, as is a
/// last piece without "\n\n" after it (an incomplete trace). Frames become
/// "REST_[php]", root first, after `comm` (gProfiler: "php"). The caller
/// keeps only the pids it profiles (`--pids`), as gProfiler does.
runtime_stacks parse_phpspy(std::string_view text,
                            std::string_view comm = php_comm,
                            const runtime_parse_limits& limits = {});

/// dotnet-trace's speedscope JSON of process `pid`, sampled into counts at
/// `frequency_hz` (gProfiler's profiling frequency) as gProfiler does:
/// events are replayed per profile (thread) from its "startValue"; the time
/// since the previous event is given to the stack as it is after the event
/// is applied ("O" pushes its frame, "C" pops it and must close the
/// innermost open frame). With dotnet-trace's event order (at each instant,
/// closes deepest first, then opens) that is each interval's own stack
/// without its leaf marker frame (CPU_TIME, UNMANAGED_CODE_TIME), as in
/// gProfiler's profiles. A stack gets round(time / (1000 / frequency_hz))
/// samples: the expected value of gProfiler's random rounding of each
/// interval, made deterministic. Time that runs backwards is dropped (as
/// gProfiler does), and so is time with no frame open (gProfiler counts it
/// for an empty stack "COMM;"). Every profile must be
/// "evented" in "milliseconds" with a numeric "startValue" (a number or a
/// numeric string); anything else, an unknown event type, a frame index out
/// of range, a close that does not match, or JSON that does not parse is an
/// error.
runtime_stacks parse_dotnet_speedscope(std::string_view json, int32_t pid,
                                       std::string_view comm,
                                       uint32_t frequency_hz,
                                       const runtime_parse_limits& limits = {});

} // namespace gpa::format
