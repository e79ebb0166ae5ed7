#pragma once

// The one reader of gProfiler's .col text (and of plain folded text): its
// header line, typed, and its stack lines, split into prefix, comm, frames
// and count. The flame graph, the Performance Studio size rule, Pyroscope's
// folded body and `upload-file` all read .col text through it, so they agree
// on what a header and a stack line are. The writer is format/col.hpp.
//
// Layout: line 1 is the header when it starts with '#': '#', then a JSON
// object (parsed with format::parse_json, so its depth is limited). Each
// further line is "<prefix>;<comm>;frame;...;frame <count>", where the
// prefix is "<app metadata index>;<container>" (the index a decimal number),
// or only "<container>" when the header says application_metadata_enabled
// is false. Without a header the text is folded: no prefix, comm first.
// Everything read is hostile: nothing here trusts a length, a count or a
// nesting depth it did not check.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpa::format {

/// What a .col header line says. Every field is optional: the text may come
/// from any gProfiler version, or from anyone.
struct col_header_info {
  /// True if the text starts with a header line ('#' first).
  bool present = false;
  /// Why the header's JSON could not be read ("" if it was, or if there is
  /// no header): malformed JSON, not an object, nested too deep, too long.
  std::string error;
  /// True if the header was refused without being parsed, because reading it
  /// would be unsafe (nested deeper than max_json_depth, or a line longer
  /// than the reader's limit). `error` says which.
  bool refused = false;
  /// "application_metadata_enabled"; absent means true (gProfiler's layout,
  /// and the agent's).
  std::optional<bool> application_metadata_enabled;
  /// The top-level "start_time" and "end_time" strings (gProfiler's
  /// upload-file takes the window from them).
  std::optional<std::string> start_time;
  std::optional<std::string> end_time;
  /// "metrics"."cpu_avg" and "mem_avg" when they are numbers.
  std::optional<double> cpu_avg;
  std::optional<double> mem_avg;
  /// Facts worth showing, as display text (made valid UTF-8, at most 256
  /// bytes each), in a fixed order: hostname, service_name, start_time,
  /// end_time, current_time, profiling_mode, cpu_avg, mem_avg,
  /// agent_version, kernel_release. Missing keys and objects are left out.
  std::vector<std::pair<std::string, std::string>> facts;

  /// How many ';'-separated fields precede the comm in the stack lines: 0
  /// without a header (folded text), 1 when application metadata is
  /// disabled (container), else 2 (index; container).
  size_t prefix_fields() const {
    if (!present)
      return 0;
    return application_metadata_enabled.value_or(true) ? 2 : 1;
  }
};

/// Parses the JSON of a header line (the text after '#') into `out` (which
/// must be default-constructed but for `present`).
void parse_col_header(std::string_view json, col_header_info& out);

/// Reads the header of a whole .col text (its first line).
col_header_info read_col_header(std::string_view text);

/// What a line of .col text is.
enum class col_line_kind {
  /// The header line (only ever the first line).
  header,
  /// A stack line: prefix, comm, frames, count.
  stack,
  /// A blank line or a '#' comment: not a stack and not a mistake.
  blank,
  /// Anything else: no count, a bad count or index, no comm field, too long.
  malformed,
};

/// One line of .col text, as views into the text it was read from (or into
/// the reader's buffer): valid only during the callback that receives it.
struct col_line {
  col_line_kind kind = col_line_kind::blank;
  /// The whole line, without its '\n' (a trailing '\r' is kept here).
  std::string_view text;
  /// The prefix fields without the ';' after them ("0;web"); empty for
  /// folded text.
  std::string_view prefix;
  /// The container (the last prefix field); empty for folded text.
  std::string_view container;
  /// "comm;frame;...;frame": the line after the prefix, before the count.
  std::string_view stack;
  /// The first field of `stack` (may be empty).
  std::string_view comm;
  /// The frames after the comm, ';'-separated, root first ("" if none).
  std::string_view frames;
  /// The count: a decimal number of at most 10^12 (0 is possible).
  uint64_t count = 0;

  /// The prefix and the comm ("0;web;java"): the line up to the comm's end.
  /// Lines of one process of one container share it.
  std::string_view process() const {
    return text.substr(
        0, static_cast<size_t>(comm.data() + comm.size() - text.data()));
  }
};

/// Reads .col or folded text line by line: whole, or fed in chunks cut
/// anywhere (only the one incomplete line is carried between chunks, so
/// memory does not grow with the input). Calls `f(const col_line&)` for
/// every line, the header first.
class col_reader {
public:
  /// Lines longer than this are malformed (a header that long is refused).
  static constexpr size_t default_max_line = size_t{64} << 20;

  explicit col_reader(size_t max_line = default_max_line)
      : max_line_(max_line) {}

  /// Feeds the next piece of text.
  template <class F>
  void feed(std::string_view chunk, F&& f) {
    while (!chunk.empty()) {
      auto nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        carry(chunk);
        return;
      }
      if (carry_.empty() && !overlong_) {
        line(chunk.substr(0, nl), f);
      } else {
        carry(chunk.substr(0, nl));
        if (overlong_)
          f(overlong_line());
        else
          line(carry_, f);
        carry_.clear();
        overlong_ = false;
      }
      chunk.remove_prefix(nl + 1);
    }
  }

  /// Ends the text: reads an unterminated last line.
  template <class F>
  void finish(F&& f) {
    if (overlong_)
      f(overlong_line());
    else if (!carry_.empty())
      line(carry_, f);
    carry_.clear();
    overlong_ = false;
  }

  /// Reads a whole text.
  template <class F>
  void read(std::string_view text, F&& f) {
    feed(text, f);
    finish(f);
  }

  /// The header (valid once the first line was read).
  const col_header_info& header() const {
    return header_;
  }

  /// Lines read so far.
  uint64_t lines() const {
    return lines_;
  }

private:
  template <class F>
  void line(std::string_view text, F& f) {
    col_line l;
    classify(text, l);
    f(static_cast<const col_line&>(l));
  }

  /// Appends to the carried line, or marks it over-long.
  void carry(std::string_view piece);

  /// The line that was too long to keep.
  col_line overlong_line();

  /// Reads one line into `l` (the header if it is the first).
  void classify(std::string_view text, col_line& l);

  size_t max_line_;
  std::string carry_;
  bool overlong_ = false;
  uint64_t lines_ = 0;
  size_t prefix_fields_ = 0;
  col_header_info header_;
};

/// Parses a .col count: decimal digits only, at most 10^12.
/// Parses a non-empty run of ASCII digits no larger than `max` (at most
/// UINT64_MAX / 10) into `value`; false (and `value` untouched) otherwise.
bool parse_decimal(std::string_view s, uint64_t max, uint64_t& value);

bool parse_col_count(std::string_view text, uint64_t& out);

} // namespace gpa::format
