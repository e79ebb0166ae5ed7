#include "format/runtime_stacks.hpp"

#include "format/col_reader.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <unordered_map>
#include <utility>

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "format/collapse.hpp"
#include "format/json.hpp"
#include "format/utf8.hpp"

namespace gpa::format {

namespace {

// -- names and messages -----------------------------------------------------

/// Appends `name` made safe as a frame: sanitize_frame()'s rules, then
/// invalid UTF-8 replaced.
void append_safe(std::string& out, std::string_view name) {
  auto safe = sanitize_frame(name);
  if (is_valid_utf8(safe))
    out += safe;
  else
    out += sanitize_utf8(safe);
}

std::string safe_comm(std::string_view comm) {
  std::string out;
  if (comm.empty())
    out = "[unknown]";
  else
    append_safe(out, comm);
  return out;
}

/// At most `max` bytes of `text`, safe as a frame, quoted, "..." if cut.
std::string excerpt(std::string_view text, size_t max = 40) {
  bool cut = text.size() > max;
  if (cut) {
    text = text.substr(0, max);
    // do not cut a UTF-8 sequence in two: drop a lead byte whose sequence
    // does not fit, with its continuation bytes
    size_t back = 0;
    auto byte = [&](size_t from_end) {
      return static_cast<unsigned char>(text[text.size() - 1 - from_end]);
    };
    while (back < 3 && back < text.size() && (byte(back) & 0xC0) == 0x80)
      ++back;
    if (back < text.size()) {
      unsigned char lead = byte(back);
      size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (need > back + 1)
        text.remove_suffix(back + 1);
    }
  }
  std::string out = "'";
  append_safe(out, text);
  out += cut ? "...'" : "'";
  return out;
}

std::string line_at(size_t line) {
  return "line " + std::to_string(line) + ": ";
}

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
  });
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && s.substr(s.size() - suffix.size()) == suffix;
}

std::string too_long(size_t size, size_t limit) {
  return "the output is " + std::to_string(size)
         + " bytes, more than the limit of " + std::to_string(limit);
}

/// Counts per stack text of one process. New stacks draw on a budget of
/// distinct stacks that several counters may share.
class stack_counter {
public:
  explicit stack_counter(size_t& budget) : budget_(&budget) {}

  /// Adds `count` to `stack`; false if `stack` is new and the budget is
  /// spent.
  bool add(const std::string& stack, uint64_t count) {
    if (auto i = counts_.find(stack); i != counts_.end()) {
      i->second += count;
      return true;
    }
    if (*budget_ == 0)
      return false;
    --*budget_;
    counts_.emplace(stack, count);
    return true;
  }

  bool empty() const {
    return counts_.empty();
  }

  /// The stacks sorted by text; adds their counts to `samples`.
  std::vector<stack_count> sorted(uint64_t& samples) const {
    std::vector<stack_count> out;
    out.reserve(counts_.size());
    for (auto& [stack, count] : counts_) {
      out.push_back({stack, count});
      samples += count;
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) {
      return a.stack < b.stack;
    });
    return out;
  }

private:
  size_t* budget_;
  std::unordered_map<std::string, uint64_t> counts_;
};

std::string too_many_stacks(size_t limit) {
  return "more than " + std::to_string(limit) + " distinct stacks";
}

/// Records a skipped line or stack.
void skip(runtime_stacks& r, std::string why) {
  if (r.skipped++ == 0)
    r.first_skipped = std::move(why);
}

/// The error for an output that had content but no usable stack.
std::string nothing_valid(std::string_view tool, const runtime_stacks& r,
                          std::string_view unit) {
  return std::string{tool} + " output has no valid " + std::string{unit} + " ("
         + std::to_string(r.skipped) + " skipped, the first at "
         + r.first_skipped + ")";
}

// -- collapsed text (rbspy, py-spy, async-profiler) -------------------------

enum class frame_rule { keep, rbspy, pyspy };

void append_frame(std::string& out, std::string_view frame, frame_rule rule) {
  size_t start = out.size();
  append_safe(out, frame);
  if (rule == frame_rule::rbspy) {
    std::string_view rendered{out.data() + start, out.size() - start};
    if (!ends_with(rendered, ruby_frame_suffix)
        && rendered.find("[c function]") == std::string_view::npos)
      out += ruby_frame_suffix;
  } else if (rule == frame_rule::pyspy) {
    std::string_view rendered{out.data() + start, out.size() - start};
    if (!ends_with(rendered, python_frame_suffix))
      out += python_frame_suffix;
  }
}

runtime_stacks parse_collapsed(std::string_view text, int32_t pid,
                               std::string_view comm, frame_rule rule,
                               std::string_view tool,
                               const runtime_parse_limits& limits) {
  runtime_stacks r;
  if (text.size() > limits.max_input) {
    r.error
        = std::string{tool} + ": " + too_long(text.size(), limits.max_input);
    return r;
  }
  std::string comm_text = safe_comm(comm);
  size_t budget = limits.max_unique_stacks;
  stack_counter counts{budget};
  std::string key;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    ++line_no;
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (is_blank(line) || line.front() == '#')
      continue;
    if (line.size() > limits.max_line) {
      skip(r, line_at(line_no) + "longer than "
                  + std::to_string(limits.max_line) + " bytes");
      continue;
    }
    size_t space = line.rfind(' ');
    if (space == std::string_view::npos) {
      skip(r,
           line_at(line_no) + "no count after the stack in " + excerpt(line));
      continue;
    }
    std::string_view stack = line.substr(0, space);
    std::string_view count_text = line.substr(space + 1);
    uint64_t count = 0;
    if (!parse_decimal(count_text, limits.max_count, count) || count == 0) {
      skip(r, line_at(line_no) + "the count " + excerpt(count_text)
                  + " is not a decimal number from 1 to "
                  + std::to_string(limits.max_count));
      continue;
    }
    if (stack.empty()) {
      skip(r, line_at(line_no) + "empty stack");
      continue;
    }
    size_t frames
        = static_cast<size_t>(std::count(stack.begin(), stack.end(), ';')) + 1;
    if (frames > limits.max_frames) {
      skip(r, line_at(line_no) + std::to_string(frames)
                  + " frames, more than the limit of "
                  + std::to_string(limits.max_frames));
      continue;
    }
    key = comm_text;
    size_t from = 0;
    while (true) {
      size_t semi = stack.find(';', from);
      key += ';';
      append_frame(key,
                   stack.substr(from, semi == std::string_view::npos
                                          ? std::string_view::npos
                                          : semi - from),
                   rule);
      if (semi == std::string_view::npos)
        break;
      from = semi + 1;
    }
    if (!counts.add(key, count)) {
      r.error = std::string{tool} + " output, " + line_at(line_no)
                + too_many_stacks(limits.max_unique_stacks);
      return r;
    }
  }
  if (counts.empty()) {
    if (r.skipped > 0)
      r.error = nothing_valid(tool, r, "stack line");
    return r;
  }
  process_stacks p;
  p.pid = pid;
  p.comm = comm_text;
  p.stacks = counts.sorted(r.samples);
  r.processes.push_back(std::move(p));
  return r;
}

} // namespace

runtime_stacks parse_rbspy(std::string_view text, int32_t pid,
                           std::string_view comm,
                           const runtime_parse_limits& limits) {
  return parse_collapsed(text, pid, comm, frame_rule::rbspy, "rbspy", limits);
}

runtime_stacks parse_pyspy(std::string_view text, int32_t pid,
                           std::string_view comm,
                           const runtime_parse_limits& limits) {
  return parse_collapsed(text, pid, comm, frame_rule::pyspy, "py-spy", limits);
}

runtime_stacks parse_async_profiler(std::string_view text, int32_t pid,
                                    std::string_view comm,
                                    const runtime_parse_limits& limits) {
  return parse_collapsed(text, pid, comm, frame_rule::keep, "async-profiler",
                         limits);
}

// -- phpspy ------------------------------------------------------------------

namespace {

/// One phpspy trace (the text between two "\n\n"), starting at line
/// `first_line`. Returns "" and sets `pid` and `key` on success, else why the
/// trace is skipped.
std::string parse_php_trace(std::string_view trace, size_t first_line,
                            const std::string& comm_text,
                            const runtime_parse_limits& limits, int32_t& pid,
                            std::string& key,
                            std::vector<std::string_view>& frames) {
  frames.clear();
  size_t line_no = first_line;
  size_t pos = 0;
  std::string_view pid_line;
  while (true) {
    size_t nl = trace.find('\n', pos);
    std::string_view line = trace.substr(
        pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (line.size() > limits.max_line)
      return line_at(line_no) + "longer than " + std::to_string(limits.max_line)
             + " bytes";
    if (nl == std::string_view::npos) {
      pid_line = line; // the last line of a trace holds the pid
      break;
    }
    // a frame line: "DEPTH REST", DEPTH == its position
    size_t digits = 0;
    while (digits < line.size() && line[digits] >= '0' && line[digits] <= '9')
      ++digits;
    if (digits == 0 || digits >= line.size() || line[digits] != ' ')
      return line_at(line_no) + excerpt(line)
             + " is not a frame line 'DEPTH FRAME'";
    uint64_t depth = 0;
    if (!parse_decimal(line.substr(0, digits), limits.max_frames, depth)
        || depth != frames.size())
      return line_at(line_no) + "frame depth " + excerpt(line.substr(0, digits))
             + " where " + std::to_string(frames.size()) + " was expected";
    if (frames.size() >= limits.max_frames)
      return line_at(line_no) + "more than " + std::to_string(limits.max_frames)
             + " frames";
    frames.push_back(line.substr(digits + 1));
    ++line_no;
    pos = nl + 1;
  }
  constexpr std::string_view pid_prefix = "# pid = ";
  if (pid_line.substr(0, pid_prefix.size()) != pid_prefix)
    return line_at(line_no) + excerpt(pid_line)
           + " is not the line '# pid = PID' that ends a trace";
  std::string_view value = pid_line.substr(pid_prefix.size());
  while (!value.empty() && is_blank(value.substr(0, 1)))
    value.remove_prefix(1);
  while (!value.empty() && is_blank(value.substr(value.size() - 1)))
    value.remove_suffix(1);
  uint64_t number = 0;
  if (!parse_decimal(value, INT32_MAX, number) || number == 0)
    return line_at(line_no) + "the pid " + excerpt(value)
           + " is not a process id";
  pid = static_cast<int32_t>(number);
  key = comm_text;
  for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
    key += ';';
    append_safe(key, *f);
    key += php_frame_suffix;
  }
  return {};
}

} // namespace

runtime_stacks parse_phpspy(std::string_view text, std::string_view comm,
                            const runtime_parse_limits& limits) {
  runtime_stacks r;
  if (text.size() > limits.max_input) {
    r.error = "phpspy: " + too_long(text.size(), limits.max_input);
    return r;
  }
  std::string comm_text = safe_comm(comm);
  std::map<int32_t, stack_counter> per_pid;
  size_t budget = limits.max_unique_stacks;
  std::string key;
  std::vector<std::string_view> frames;
  size_t line_no = 1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sep = text.find("\n\n", pos);
    if (sep == std::string_view::npos) {
      skip(r,
           line_at(line_no) + "incomplete last trace (no empty line after it)");
      break;
    }
    std::string_view trace = text.substr(pos, sep - pos);
    int32_t pid = 0;
    auto why
        = parse_php_trace(trace, line_no, comm_text, limits, pid, key, frames);
    if (!why.empty()) {
      skip(r, std::move(why));
    } else {
      auto& counts = per_pid.try_emplace(pid, budget).first->second;
      if (!counts.add(key, 1)) {
        r.error = "phpspy output, " + line_at(line_no)
                  + too_many_stacks(limits.max_unique_stacks);
        return r;
      }
    }
    line_no += static_cast<size_t>(std::count(trace.begin(), trace.end(), '\n'))
               + 2;
    pos = sep + 2;
  }
  if (per_pid.empty()) {
    if (r.skipped > 0)
      r.error = nothing_valid("phpspy", r, "trace");
    return r;
  }
  for (auto& [pid, counts] : per_pid) {
    process_stacks p;
    p.pid = pid;
    p.comm = comm_text;
    p.stacks = counts.sorted(r.samples);
    r.processes.push_back(std::move(p));
  }
  return r;
}

// -- dotnet-trace speedscope -------------------------------------------------

namespace {

/// The SAX handler: follows where in the document the parser is, replays
/// each profile's events as they come and accumulates time per stack. Stacks
/// are nodes of a trie (parent, frame), so an event costs one hash lookup.
class speedscope_handler {
public:
  using stream = rapidjson::EncodedInputStream<rapidjson::UTF8<>,
                                               rapidjson::MemoryStream>;

  speedscope_handler(const stream& in, const runtime_parse_limits& limits)
      : in_(in), limits_(limits) {
    nodes_.push_back({0, 0, 0, 0.0}); // the empty stack
  }

  /// Why the handler stopped the parse, and where (byte offset).
  const std::string& error() const {
    return error_;
  }

  size_t error_offset() const {
    return error_offset_;
  }

  // -- the SAX interface

  bool Null() {
    return scalar(value_kind::other);
  }

  bool Bool(bool) {
    return scalar(value_kind::other);
  }

  bool Int(int v) {
    return integer(v);
  }

  bool Uint(unsigned v) {
    return integer(v);
  }

  bool Int64(int64_t v) {
    return integer(v);
  }

  bool Uint64(uint64_t v) {
    if (v > static_cast<uint64_t>(INT64_MAX))
      return number(static_cast<double>(v), false);
    return integer(static_cast<int64_t>(v));
  }

  bool Double(double v) {
    return number(v, false);
  }

  bool RawNumber(const char*, rapidjson::SizeType, bool) {
    return scalar(value_kind::other); // not used without the flag
  }

  bool String(const char* s, rapidjson::SizeType n, bool) {
    string_ = std::string_view{s, n};
    return scalar(value_kind::string);
  }

  bool Key(const char* s, rapidjson::SizeType n, bool) {
    std::string_view k{s, n};
    key_ = key::other;
    switch (top()) {
      case ctx::root:
        if (k == "shared")
          return mark(key::shared, root_.shared);
        if (k == "profiles")
          return mark(key::profiles, root_.profiles);
        break;
      case ctx::shared:
        if (k == "frames")
          return mark(key::frames, shared_frames_);
        break;
      case ctx::frame:
        if (k == "name")
          return mark(key::name, frame_name_seen_);
        break;
      case ctx::profile:
        if (k == "type")
          return mark(key::type, profile_.type_seen);
        if (k == "unit")
          return mark(key::unit, profile_.unit_seen);
        if (k == "startValue")
          return mark(key::start_value, profile_.start_seen);
        if (k == "events")
          return mark(key::events, profile_.events_seen);
        break;
      case ctx::event:
        if (k == "type")
          return mark(key::type, event_.type_seen);
        if (k == "frame")
          return mark(key::frame, event_.frame_seen);
        if (k == "at")
          return mark(key::at, event_.at_seen);
        break;
      default: break;
    }
    return true;
  }

  bool StartObject() {
    ctx next = ctx::other;
    if (stack_.empty()) {
      next = ctx::root;
    } else {
      switch (top()) {
        case ctx::root:
          if (key_ == key::shared)
            next = ctx::shared;
          else if (key_ == key::profiles)
            return fail("\"profiles\" is not an array");
          break;
        case ctx::shared:
          if (key_ == key::frames)
            return fail("\"shared.frames\" is not an array");
          break;
        case ctx::frames:
          next = ctx::frame;
          frame_name_seen_ = false;
          names_.emplace_back();
          named_.push_back(false);
          break;
        case ctx::profiles:
          next = ctx::profile;
          profile_ = {};
          ++profile_index_;
          break;
        case ctx::events:
          next = ctx::event;
          event_ = {};
          ++profile_.event_index;
          break;
        default:
          if (interpreted_key())
            return fail(where_key() + " is not " + expected_kind());
          break;
      }
    }
    return push(next);
  }

  bool EndObject(rapidjson::SizeType) {
    ctx closed = top();
    stack_.pop_back();
    switch (closed) {
      case ctx::root:
        if (!root_.profiles)
          return fail("no \"profiles\" in the document");
        break;
      case ctx::event: return apply_event();
      case ctx::profile: return end_profile();
      default: break;
    }
    return true;
  }

  bool StartArray() {
    if (stack_.empty())
      return fail("the document is not a JSON object");
    ctx next = ctx::other;
    switch (top()) {
      case ctx::root:
        if (key_ == key::profiles)
          next = ctx::profiles;
        else if (key_ == key::shared)
          return fail("\"shared\" is not an object");
        break;
      case ctx::shared:
        if (key_ == key::frames)
          next = ctx::frames;
        break;
      case ctx::profile:
        if (key_ == key::events)
          next = ctx::events;
        else if (interpreted_key())
          return fail(where_key() + " is not " + expected_kind());
        break;
      case ctx::frames:
      case ctx::profiles:
      case ctx::events: return fail(where_element() + " is not an object");
      default:
        if (interpreted_key())
          return fail(where_key() + " is not " + expected_kind());
        break;
    }
    return push(next);
  }

  bool EndArray(rapidjson::SizeType) {
    stack_.pop_back();
    return true;
  }

  // -- after the parse

  /// Checks what can only be checked at the end and renders the stacks.
  /// Returns "" or the error.
  std::string finish(int32_t pid, const std::string& comm_text,
                     uint32_t frequency_hz, runtime_stacks& r) const {
    if (max_frame_ref_ >= 0
        && static_cast<size_t>(max_frame_ref_) >= names_.size())
      return max_frame_where_ + "frame " + std::to_string(max_frame_ref_)
             + " is not in \"shared.frames\" (" + std::to_string(names_.size())
             + " frames)";
    double interval_ms = 1000.0 / frequency_hz;
    size_t budget = limits_.max_unique_stacks;
    stack_counter counts{budget};
    std::string key;
    std::vector<uint32_t> path;
    for (size_t n = 1; n < nodes_.size(); ++n) {
      double samples = std::floor(nodes_[n].time_ms / interval_ms + 0.5);
      if (!(samples >= 1))
        continue;
      if (samples > 1e15)
        return "the time spent in one stack, "
               + std::to_string(nodes_[n].time_ms)
               + " ms, is more than can be counted";
      path.clear();
      for (uint32_t at = static_cast<uint32_t>(n); at != 0;
           at = nodes_[at].parent)
        path.push_back(nodes_[at].frame);
      key = comm_text;
      for (auto f = path.rbegin(); f != path.rend(); ++f) {
        if (!named_[*f])
          return "frame " + std::to_string(*f)
                 + " of \"shared.frames\" has no \"name\" string";
        key += ';';
        append_safe(key, names_[*f]);
        key += dotnet_frame_suffix;
      }
      if (!counts.add(key, static_cast<uint64_t>(samples)))
        return too_many_stacks(limits_.max_unique_stacks);
    }
    if (!counts.empty()) {
      process_stacks p;
      p.pid = pid;
      p.comm = comm_text;
      p.stacks = counts.sorted(r.samples);
      r.processes.push_back(std::move(p));
    }
    return {};
  }

private:
  /// The containers the parser is in.
  enum class ctx : uint8_t {
    root,
    shared,
    frames,
    frame,
    profiles,
    profile,
    events,
    event,
    other,
  };

  /// The member whose value comes next, in the innermost object.
  enum class key : uint8_t {
    other,
    shared,
    profiles,
    frames,
    name,
    type,
    unit,
    start_value,
    events,
    frame,
    at,
  };

  enum class value_kind : uint8_t { string, other };

  struct node {
    uint32_t parent;
    uint32_t frame;
    uint32_t depth;
    double time_ms;
  };

  struct profile_state {
    bool type_seen = false;
    bool unit_seen = false;
    bool start_seen = false;
    bool events_seen = false;
    bool start_valid = false;
    double start = 0;
    /// Time of the previous event; unset before the first.
    bool clock_set = false;
    double last = 0;
    uint32_t node = 0;
    int64_t event_index = -1;
  };

  struct event_state {
    bool type_seen = false;
    bool frame_seen = false;
    bool at_seen = false;
    char type = 0;
    int64_t frame = -1;
    double at = 0;
  };

  ctx top() const {
    return stack_.empty() ? ctx::other : stack_.back();
  }

  bool push(ctx c) {
    if (stack_.size() >= max_json_depth)
      return fail("nested deeper than " + std::to_string(max_json_depth)
                  + " levels");
    stack_.push_back(c);
    if (c == ctx::other)
      key_ = key::other; // nothing inside is interpreted
    return true;
  }

  bool mark(key k, bool& seen) {
    if (seen)
      return fail("the key \"" + key_name(k) + "\" appears twice in "
                  + where_object());
    seen = true;
    key_ = k;
    return true;
  }

  /// Whether the current key's value is one the parser reads. A frame's
  /// "name" that is not a string is an error only when the frame is used
  /// (as in gProfiler), so it does not count here.
  bool interpreted_key() const {
    return key_ != key::other && !(top() == ctx::frame && key_ == key::name);
  }

  static std::string key_name(key k) {
    switch (k) {
      case key::shared: return "shared";
      case key::profiles: return "profiles";
      case key::frames: return "frames";
      case key::name: return "name";
      case key::type: return "type";
      case key::unit: return "unit";
      case key::start_value: return "startValue";
      case key::events: return "events";
      case key::frame: return "frame";
      case key::at: return "at";
      default: return "?";
    }
  }

  /// What the value of the current key must be, with its article.
  std::string expected_kind() const {
    switch (key_) {
      case key::shared: return "an object";
      case key::profiles:
      case key::frames:
      case key::events: return "an array";
      case key::name:
      case key::type:
      case key::unit: return "a string";
      case key::frame: return "a frame index";
      case key::start_value:
      case key::at: return "a number";
      default: return "a value";
    }
  }

  std::string where_profile() const {
    return "profiles[" + std::to_string(profile_index_) + "]";
  }

  std::string where_event() const {
    return where_profile() + ".events[" + std::to_string(profile_.event_index)
           + "]";
  }

  std::string where_object() const {
    switch (top()) {
      case ctx::root: return "the document";
      case ctx::shared: return "\"shared\"";
      case ctx::frame:
        return "shared.frames[" + std::to_string(names_.size() - 1) + "]";
      case ctx::profile: return where_profile();
      case ctx::event: return where_event();
      default: return "an object";
    }
  }

  std::string where_key() const {
    switch (top()) {
      case ctx::root: return "\"" + key_name(key_) + "\"";
      case ctx::shared: return "\"shared." + key_name(key_) + "\"";
      default: return where_object() + "." + key_name(key_);
    }
  }

  std::string where_element() const {
    switch (top()) {
      case ctx::frames:
        return "shared.frames[" + std::to_string(names_.size()) + "]";
      case ctx::profiles:
        return "profiles[" + std::to_string(profile_index_ + 1) + "]";
      case ctx::events:
        return where_profile() + ".events["
               + std::to_string(profile_.event_index + 1) + "]";
      default: return "an element";
    }
  }

  bool fail(std::string why) {
    if (error_.empty()) {
      error_ = std::move(why);
      error_offset_ = in_.Tell();
    }
    return false;
  }

  /// A value that is neither a container nor a number.
  bool scalar(value_kind kind) {
    if (stack_.empty())
      return fail("the document is not a JSON object");
    switch (top()) {
      case ctx::frames:
      case ctx::profiles:
      case ctx::events: return fail(where_element() + " is not an object");
      case ctx::frame:
        if (key_ == key::name && kind == value_kind::string) {
          names_.back() = std::string{string_};
          named_.back() = true;
        }
        return true; // a name that is not a string fails only when used
      case ctx::profile:
        switch (key_) {
          case key::type:
            if (kind != value_kind::string)
              return fail(where_key() + " is not a string");
            if (string_ != "evented")
              return fail(where_key() + " is " + excerpt(string_)
                          + ", not 'evented'");
            return true;
          case key::unit:
            if (kind != value_kind::string)
              return fail(where_key() + " is not a string");
            if (string_ != "milliseconds")
              return fail(where_key() + " is " + excerpt(string_)
                          + ", not 'milliseconds'");
            return true;
          case key::start_value:
            if (kind == value_kind::string && numeric_string(string_))
              return true;
            return fail(where_key() + " is not a number");
          case key::events: return fail(where_key() + " is not an array");
          default: return true;
        }
      case ctx::event:
        switch (key_) {
          case key::type:
            if (kind != value_kind::string)
              return fail(where_key() + " is not a string");
            if (string_ != "O" && string_ != "C")
              return fail(where_key() + " is " + excerpt(string_)
                          + ", not 'O' or 'C'");
            event_.type = string_[0];
            return true;
          case key::frame: return fail(where_key() + " is not a frame index");
          case key::at: return fail(where_key() + " is not a number");
          default: return true;
        }
      case ctx::root:
        if (key_ == key::shared)
          return fail("\"shared\" is not an object");
        if (key_ == key::profiles)
          return fail("\"profiles\" is not an array");
        return true;
      case ctx::shared:
        if (key_ == key::frames)
          return fail("\"shared.frames\" is not an array");
        return true;
      default: return true;
    }
  }

  /// A string that Python's float() would take (what gProfiler does with
  /// dotnet-trace's string "startValue").
  bool numeric_string(std::string_view s) {
    std::string copy{s};
    const char* begin = copy.c_str();
    char* end = nullptr;
    double v = std::strtod(begin, &end);
    if (end == begin)
      return false;
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
      ++end;
    if (*end != '\0' || !std::isfinite(v))
      return false;
    profile_.start = v;
    profile_.start_valid = true;
    return true;
  }

  bool integer(int64_t v) {
    if (top() == ctx::event && key_ == key::frame) {
      if (v < 0 || v > INT32_MAX)
        return fail(where_key() + " is " + std::to_string(v)
                    + ", not a frame index");
      event_.frame = v;
      return true;
    }
    return number(static_cast<double>(v), true);
  }

  bool number(double v, bool integral) {
    switch (top()) {
      case ctx::profile:
        if (key_ == key::start_value) {
          profile_.start = v;
          profile_.start_valid = true;
          return true;
        }
        if (interpreted_key())
          return fail(where_key() + " is not " + expected_kind());
        return true;
      case ctx::event:
        if (key_ == key::at) {
          event_.at = v;
          return true;
        }
        if (key_ == key::frame && !integral)
          return fail(where_key() + " is " + std::to_string(v)
                      + ", not a frame index");
        if (interpreted_key())
          return fail(where_key() + " is not " + expected_kind());
        return true;
      case ctx::frames:
      case ctx::profiles:
      case ctx::events: return fail(where_element() + " is not an object");
      case ctx::frame: return true;
      default:
        if (stack_.empty())
          return fail("the document is not a JSON object");
        if (interpreted_key())
          return fail(where_key() + " is not " + expected_kind());
        return true;
    }
  }

  bool apply_event() {
    if (!event_.type_seen || !event_.frame_seen || !event_.at_seen)
      return fail(where_event() + " lacks \""
                  + (!event_.type_seen    ? "type"
                     : !event_.frame_seen ? "frame"
                                          : "at")
                  + "\"");
    auto frame = static_cast<uint32_t>(event_.frame);
    if (event_.frame > max_frame_ref_) {
      max_frame_ref_ = event_.frame;
      max_frame_where_ = where_event() + ": ";
    }
    if (!profile_.clock_set) {
      // gProfiler starts each profile's clock at its "startValue"
      profile_.last = profile_.start_seen && profile_.start_valid
                          ? profile_.start
                          : event_.at;
      profile_.clock_set = true;
    }
    double elapsed = event_.at - profile_.last;
    profile_.last = event_.at;
    if (event_.type == 'O') {
      if (nodes_[profile_.node].depth >= limits_.max_frames)
        return fail(where_event() + " opens a frame at depth "
                    + std::to_string(limits_.max_frames)
                    + ", more than the limit");
      uint64_t edge = (uint64_t{profile_.node} << 32) | frame;
      auto found = children_.find(edge);
      if (found == children_.end()) {
        if (nodes_.size() > limits_.max_unique_stacks)
          return fail(where_event() + ": "
                      + too_many_stacks(limits_.max_unique_stacks));
        auto id = static_cast<uint32_t>(nodes_.size());
        nodes_.push_back(
            {profile_.node, frame, nodes_[profile_.node].depth + 1, 0.0});
        found = children_.emplace(edge, id).first;
      }
      profile_.node = found->second;
    } else {
      if (profile_.node == 0)
        return fail(where_event() + " closes frame " + std::to_string(frame)
                    + " but no frame is open");
      auto& open = nodes_[profile_.node];
      if (open.frame != frame)
        return fail(where_event() + " closes frame " + std::to_string(frame)
                    + " but the innermost open frame is "
                    + std::to_string(open.frame));
      profile_.node = open.parent;
    }
    if (!std::isfinite(elapsed) || elapsed > 1e12)
      return fail(where_event() + " is " + std::to_string(elapsed)
                  + " ms after the previous one, out of range");
    if (elapsed > 0 && profile_.node != 0)
      nodes_[profile_.node].time_ms += elapsed;
    return true;
  }

  bool end_profile() {
    if (!profile_.type_seen)
      return fail(where_profile() + " lacks \"type\"");
    if (!profile_.unit_seen)
      return fail(where_profile() + " lacks \"unit\"");
    if (!profile_.start_seen)
      return fail(where_profile() + " lacks \"startValue\"");
    if (!profile_.events_seen)
      return fail(where_profile() + " lacks \"events\"");
    return true;
  }

  const stream& in_;
  runtime_parse_limits limits_;
  std::vector<ctx> stack_;
  key key_ = key::other;
  std::string_view string_;
  std::string error_;
  size_t error_offset_ = 0;

  struct {
    bool shared = false;
    bool profiles = false;
  } root_;
  bool shared_frames_ = false;
  bool frame_name_seen_ = false;
  std::vector<std::string> names_;
  std::vector<bool> named_;
  int64_t profile_index_ = -1;
  profile_state profile_;
  event_state event_;
  int64_t max_frame_ref_ = -1;
  std::string max_frame_where_;
  std::vector<node> nodes_;
  std::unordered_map<uint64_t, uint32_t> children_;
};

} // namespace

runtime_stacks parse_dotnet_speedscope(std::string_view json, int32_t pid,
                                       std::string_view comm,
                                       uint32_t frequency_hz,
                                       const runtime_parse_limits& limits) {
  runtime_stacks r;
  auto fail = [&](const std::string& why) {
    r.error = "dotnet-trace speedscope output: " + why;
    return r;
  };
  if (json.size() > limits.max_input)
    return fail(too_long(json.size(), limits.max_input));
  if (frequency_hz == 0)
    return fail("the profiling frequency is 0");
  rapidjson::MemoryStream memory{json.data(), json.size()};
  speedscope_handler::stream in{memory};
  speedscope_handler handler{in, limits};
  rapidjson::Reader reader;
  reader.Parse<rapidjson::kParseIterativeFlag>(in, handler);
  auto located = [&](size_t offset, const std::string& why) {
    auto [line, column] = line_and_column(json, offset);
    return "byte " + std::to_string(offset) + " (line " + std::to_string(line)
           + ", column " + std::to_string(column) + "): " + why;
  };
  if (reader.HasParseError()) {
    if (reader.GetParseErrorCode() == rapidjson::kParseErrorTermination
        && !handler.error().empty())
      return fail(located(handler.error_offset(), handler.error()));
    return fail(
        located(reader.GetErrorOffset(),
                std::string{"malformed JSON: "}
                    + rapidjson::GetParseError_En(reader.GetParseErrorCode())));
  }
  auto why = handler.finish(pid, safe_comm(comm), frequency_hz, r);
  if (!why.empty()) {
    r.processes.clear();
    r.samples = 0;
    return fail(why);
  }
  return r;
}

} // namespace gpa::format
