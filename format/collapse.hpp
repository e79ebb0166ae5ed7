#pragma once

// Turns `perf script` text into collapsed stacks, the way gProfiler does, at
// the speed of reading the text: the agent runs this on every window's
// recording of the whole host, so it is its hottest code.
//
// Input (perf record -g, then perf script -F +pid): records separated by a
// blank line. A record is one header line
//
//     comm  pid/tid [cpu] time: period event:
//
// (or `comm tid [cpu] time: ...` without -F +pid), then its frame lines, leaf
// first:
//
//     \t<hex addr> <symbol>+0x<off> (<dso>)
//
// Rules (gProfiler's, made exact):
//
// - The header is read from the right, where perf's own fields are: the
//   last `time:` token (`digits.digits:`; without one, the last `[cpu]`
//   token), before it an optional `[cpu]` token, then the pid/tid token,
//   shaped `P/T` or `P` (digits, maybe a leading '-'). The comm is
//   everything before the pid/tid token, trimmed, so a comm may hold spaces,
//   digits, '/', ';', brackets and colons (`kworker/0:1 12`, `my;app 3`,
//   even `x 1/1 [000] 1.5:`) and never changes the pid. A line without that
//   shape is not a header.
// - The dso is the LAST parenthesised group of a frame line, matched from the
//   end with nesting (so `(/lib/x.so (deleted))` is one group); the symbol is
//   what lies between the address and that group, so it may hold spaces and
//   parentheses (`long Spin.f(long)`, `operator()`). A frame line without a
//   trailing group has no dso.
// - A trailing `+0x<hex>` offset is removed from the symbol; no other '+'
//   (`operator+`, `operator++0x18` becomes `operator+`).
// - Symbol `[unknown]` becomes `(<dso basename>)`: the part of the dso after
//   its last '/', without a ` (deleted)` tag and without enclosing brackets
//   (`(libc.so.6)`, `(perf-1234.map)`, `(vdso)`). If the dso is unknown too
//   (`[unknown]` or missing), the frame stays `[unknown]`. gProfiler keeps the
//   whole dso path here; the basename keeps flame graphs readable.
// - A frame whose dso contains `kernel` or `vmlinux` gets the suffix `_[k]`
//   (after the unknown rule: `(kernel.kallsyms)_[k]`).
// - An empty symbol becomes `[unknown]`; an empty comm becomes `[unknown]`.
// - Names are made safe for the format: ';' becomes '_' (it separates
//   frames), every control character (below 0x20, and 0x7f) becomes a space.
//   The count is always the last space-separated token of a folded line, so
//   a comm with spaces and a trailing number round-trips.
// - The output stack is the comm, then the frames root first. A record
//   without frames is just the comm. Every record counts 1, whatever perf's
//   period says. JIT frames symbolised from /tmp/perf-<pid>.map keep their
//   symbol (they are ordinary frames; see the Java rule below).
// - Java frames (only when per_process() is given a test of which processes
//   are JVMs): a frame perf symbolised from a JIT map, whose dso's base name
//   is `perf-<digits>.map` (`/tmp/perf-<pid>.map`, written by the JDK's
//   `Compiler.perfmap`), and whose symbol has the shape HotSpot gives a
//   compiled method in that map (Method::external_name: `<return type>
//   <class>.<method>(<parameter types>)`, e.g. `long Hot.fib(int)`; see
//   java_jit_frame()), gets gProfiler's Java suffix `_[j]` in the stacks of
//   a JVM. The map's other entries (`Interpreter`, `StubRoutines (1)`, `I2C/
//   C2I adapters`, runtime stubs) are VM code and stay as they are, and so
//   do the frames of other processes' perf maps (Node.js with
//   --perf-basic-prof).
// - Lines starting with '#' between records are perf's comments and are
//   skipped. A header line that follows a record without a blank line ends
//   that record and starts the next one.
//
// Malformed records (a header without a pid, a frame line without an
// address, more than `max_frames` frames, a line longer than `max_line`, a
// frame line outside any record) are dropped and counted, never fatal.
//
// Memory grows with the number of unique frame texts, frames and (pid,
// comm, stack) triples, not with the input: the text of a frame line after
// its address ("symbol+0xoff (dso)") is interned in an open-addressing table
// and mapped once to its canonical (symbol, dso) frame ID, stacks are counted
// by their ID sequence, and names are rendered once per unique frame when
// results are asked for. Only one incomplete line is carried between two
// feed() calls. See docs/performance.md for how it is made fast.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "format/profile.hpp"

namespace gpa::format {

/// Counters of one conversion, cheap to read at any time.
struct collapse_stats {
  /// Records counted as samples.
  uint64_t samples = 0;
  /// Records dropped as malformed.
  uint64_t malformed = 0;
  /// Input bytes fed so far.
  uint64_t bytes = 0;
  /// Unique frames (symbol, dso) interned.
  uint64_t unique_frames = 0;
  /// Unique (pid, comm, frames) stacks counted.
  uint64_t unique_stacks = 0;
};

/// Limits that keep hostile input from growing memory without bound.
struct collapse_limits {
  /// A line longer than this is dropped and its record is malformed.
  size_t max_line = size_t{1} << 20;
  /// A record with more frame lines than this is malformed.
  size_t max_frames = 16384;
};

/// Streaming converter of `perf script` text to collapsed stacks (see the
/// rules at the top of this header). Feed it chunks cut anywhere, call
/// finish() at the end of the input, then read the results. Not thread-safe;
/// one instance per conversion (or clear() between windows).
class perf_collapser {
public:
  /// A converter with the default limits.
  perf_collapser();

  /// A converter with the given limits.
  explicit perf_collapser(collapse_limits limits);

  ~perf_collapser();

  perf_collapser(const perf_collapser&) = delete;
  perf_collapser& operator=(const perf_collapser&) = delete;

  /// Consumes the next piece of the input. Chunk boundaries may fall
  /// anywhere, even inside a line.
  void feed(std::string_view chunk);

  /// Ends the input: processes an unterminated last line if it is a complete
  /// line (a frame line ending in its dso group, or a header), drops it
  /// otherwise (counting its record as malformed if the record has no
  /// complete header), and closes the last record. Idempotent; feeding
  /// again afterwards starts a new record.
  void finish();

  /// Counters so far.
  collapse_stats stats() const;

  /// Samples counted so far (records closed).
  uint64_t samples() const;

  /// Records dropped as malformed so far.
  uint64_t malformed() const;

  /// Unique (pid, comm, frames) stacks so far.
  size_t unique_stacks() const;

  /// The stacks grouped per pid, sorted by pid, each process's stacks sorted
  /// by text with equal texts merged. `process_stacks::comm` is the comm of
  /// the process's main thread (tid == pid) if it was sampled, else the comm
  /// of its first sample. Call after finish().
  std::vector<process_stacks> per_process() const;

  /// per_process(), with the Java frames of JVMs marked `_[j]` (see the
  /// rules): `is_jvm(pid)` is asked once for each process that has frames
  /// of the Java shape from a perf map, and only for those.
  std::vector<process_stacks>
  per_process(const std::function<bool(int32_t pid)>& is_jvm) const;

  /// All stacks aggregated across pids, sorted by text, equal texts merged.
  std::vector<stack_count> merged() const;

  /// Appends the merged stacks as folded lines ("comm;frame;...;frame N\n")
  /// to `out`: the collapse-perf output.
  void write_folded(std::string& out) const;

  /// Forgets everything (results, counters, carried input) and releases the
  /// memory, so that the next window starts from nothing.
  void clear();

private:
  /// The tables and the parser state (collapse.cpp).
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Whether a frame (its symbol without the `+0x` offset, and its dso) is a
/// compiled Java method of a JIT map: the dso's base name is
/// `perf-<digits>.map`, and the symbol is `R C.M(P)`: a return type R and a
/// qualified name C.M without spaces or parentheses (M without '.'), then
/// parameter types P without parentheses, nothing after them.
bool java_jit_frame(std::string_view symbol, std::string_view dso);

/// Makes `name` safe as one frame (or comm) of a folded line: ';' becomes
/// '_', control characters become spaces. Exposed for the other profilers.
std::string sanitize_frame(std::string_view name);

} // namespace gpa::format
