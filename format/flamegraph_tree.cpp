#include "format/flamegraph_tree.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

// The JSON that to_json() writes, read by format/viewer/viewer.js:
//
//   {"version": 1, "format": "col" | "folded",
//    "meta": {"hostname": "...", ...},          header facts, text values
//    "total": N, "stack_lines": N, "skipped_lines": N, "truncated_stacks": N,
//    "prune_threshold": N, "header_error": "...",
//    "errors": [{"comm": "...", "text": "...", "samples": N}, ...],
//    "dropped_errors": N,
//    "kind_names": ["native", ...],
//    "names": ["...", ...],                      only the names written below
//    "kinds": [K, ...],                          frame kind of each name
//    "groups": [[CONTAINER, NODE], ...]}         one per (container, comm)
//
// NODE is [NAME, TOTAL, NODE, NODE, ...]: a name index, the samples through
// the node, then its children. A group's NODE is its comm.

namespace gpa::format {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool is_ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '_' || c == '$';
}

// "long Spin.f(long)", "void java.lang.Thread.run()": a return type, a space,
// a dotted qualified name, then an argument list. perf prints C++ names
// without a return type and with "::", so they do not match.
bool looks_like_java_jit(std::string_view s) {
  if (s.empty() || s.back() != ')' || s.find("::") != std::string_view::npos)
    return false;
  auto paren = s.find('(');
  if (paren == std::string_view::npos || paren == 0)
    return false;
  auto space = s.rfind(' ', paren);
  if (space == std::string_view::npos || space == 0)
    return false;
  auto qualified = s.substr(space + 1, paren - space - 1);
  if (qualified.empty() || qualified.find('.') == std::string_view::npos)
    return false;
  for (char c : qualified)
    if (!is_ident_char(c) && c != '.' && c != '<' && c != '>')
      return false;
  for (char c : s.substr(0, space))
    if (!is_ident_char(c) && c != '.' && c != '[' && c != ']')
      return false;
  return true;
}

// "Ljava/lang/Thread" (the part before ";::run", which the ';' of the
// collapsed format split off) and "::run" itself.
bool looks_like_java_descriptor(std::string_view s) {
  if (starts_with(s, "::") && s.size() > 2 && is_ident_char(s[2]))
    return true;
  if (s.size() < 3 || s[0] != 'L' || s.find('/') == std::string_view::npos)
    return false;
  for (char c : s.substr(1))
    if (!is_ident_char(c) && c != '/')
      return false;
  return true;
}

// "handle (app/views.py:42)": py-spy's frame shape without a suffix.
bool looks_like_python(std::string_view s) {
  if (s.empty() || s.back() != ')')
    return false;
  auto open = s.rfind(" (");
  if (open == std::string_view::npos)
    return false;
  auto loc = s.substr(open + 2, s.size() - open - 3);
  auto colon = loc.rfind(':');
  if (colon == std::string_view::npos || colon < 3)
    return false;
  return loc.substr(colon - 3, 3) == ".py";
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto n = std::snprintf(buf, sizeof(buf), "%llu",
                         static_cast<unsigned long long>(v));
  out.append(buf, static_cast<size_t>(n));
}

} // namespace

// -- free functions
// -------------------------------------------------------------

frame_kind classify_frame(std::string_view name) {
  if (starts_with(name, "[Profiling"))
    return frame_kind::error;
  if (name == "[pruned]" || name == "[truncated]")
    return frame_kind::pruned;
  if (name.size() > 3 && name.back() == ']') {
    if (ends_with(name, "_[k]"))
      return frame_kind::kernel;
    if (ends_with(name, "_[p]") || ends_with(name, "_[pe]")
        || ends_with(name, "_[pn]"))
      return frame_kind::python;
    if (ends_with(name, "_[j]"))
      return frame_kind::java;
    if (ends_with(name, "_[rb]"))
      return frame_kind::ruby;
    if (ends_with(name, "_[php]"))
      return frame_kind::php;
    if (ends_with(name, "_[net]"))
      return frame_kind::dotnet;
  }
  if (looks_like_java_descriptor(name) || looks_like_java_jit(name))
    return frame_kind::java;
  if (looks_like_python(name))
    return frame_kind::python;
  return frame_kind::native;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else if (c == 0xE2 && i + 2 < text.size()
                   && static_cast<unsigned char>(text[i + 1]) == 0x80
                   && (static_cast<unsigned char>(text[i + 2]) == 0xA8
                       || static_cast<unsigned char>(text[i + 2]) == 0xA9)) {
          // U+2028 and U+2029 end a line in older JavaScript.
          out += static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028"
                                                                 : "\\u2029";
          i += 2;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void append_html_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

// -- reading
// ----------------------------------------------------------------------

flame_tree::flame_tree(tree_options opts) : opts_(opts) {
  if (opts_.max_depth < 2)
    opts_.max_depth = 2;
  nodes_.emplace_back();
  intern("all");
  pruned_name_ = intern("[pruned]");
  truncated_name_ = intern("[truncated]");
}

flame_tree::flame_tree(std::string_view text, tree_options opts)
    : flame_tree(opts) {
  feed(text);
  finish();
}

void flame_tree::feed(std::string_view chunk) {
  reader_.feed(chunk, [this](const col_line& l) {
    take_line(l);
  });
}

void flame_tree::finish() {
  reader_.finish([this](const col_line& l) {
    take_line(l);
  });
}

namespace {

// Spreads the bits of an edge key over the table (splitmix64's finaliser).
uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

constexpr size_t arena_chunk = 1 << 20;

} // namespace

std::string_view flame_tree::store(std::string_view name) {
  if (name.size() > arena_left_) {
    auto size = std::max(arena_chunk, name.size());
    arena_.emplace_back(new char[size]);
    arena_next_ = arena_.back().get();
    arena_left_ = size;
  }
  std::copy(name.begin(), name.end(), arena_next_);
  std::string_view copy{arena_next_, name.size()};
  arena_next_ += name.size();
  arena_left_ -= name.size();
  return copy;
}

void flame_tree::grow_names() {
  std::vector<name_slot> slots(std::max<size_t>(1024, name_slots_.size() * 2));
  auto mask = slots.size() - 1;
  for (auto& old : name_slots_) {
    if (old.id == 0)
      continue;
    auto i = old.hash & mask;
    while (slots[i].id != 0)
      i = (i + 1) & mask;
    slots[i] = old;
  }
  name_slots_.swap(slots);
}

uint32_t flame_tree::intern(std::string_view name) {
  std::string fixed;
  name = valid_utf8(name, fixed);
  if ((names_.size() + 1) * 2 > name_slots_.size())
    grow_names();
  auto hash = std::hash<std::string_view>{}(name);
  auto mask = name_slots_.size() - 1;
  auto i = hash & mask;
  for (; name_slots_[i].id != 0; i = (i + 1) & mask) {
    auto& slot = name_slots_[i];
    if (slot.hash == hash && names_[slot.id - 1] == name)
      return slot.id - 1;
  }
  auto id = static_cast<uint32_t>(names_.size());
  names_.push_back(store(name));
  kinds_.push_back(classify_frame(name));
  name_slots_[i] = name_slot{hash, id + 1};
  return id;
}

void flame_tree::grow_children() {
  std::vector<edge_slot> slots(std::max<size_t>(1024, child_slots_.size() * 2));
  auto mask = slots.size() - 1;
  for (auto& old : child_slots_) {
    if (old.key == 0)
      continue;
    auto i = mix(old.key) & mask;
    while (slots[i].key != 0)
      i = (i + 1) & mask;
    slots[i] = old;
  }
  child_slots_.swap(slots);
}

flame_tree::node_id flame_tree::child(node_id parent, uint32_t name) {
  if ((child_count_ + 1) * 2 > child_slots_.size())
    grow_children();
  auto key = ((static_cast<uint64_t>(parent) << 32) | name) + 1;
  auto mask = child_slots_.size() - 1;
  auto i = mix(key) & mask;
  for (; child_slots_[i].key != 0; i = (i + 1) & mask)
    if (child_slots_[i].key == key)
      return child_slots_[i].child;
  auto id = static_cast<node_id>(nodes_.size());
  child_slots_[i] = edge_slot{key, id};
  ++child_count_;
  node n;
  n.name = name;
  n.next_sibling = nodes_[parent].first_child;
  nodes_.push_back(n);
  nodes_[parent].first_child = id;
  return id;
}

bool flame_tree::add_stack(std::string_view container,
                           const std::vector<std::string_view>& frames,
                           uint64_t count) {
  size_t first = 0;
  while (first < frames.size() && frames[first].empty())
    ++first;
  if (first == frames.size() || count == 0)
    return false;
  auto comm = frames[first];
  node_id at = child(0, intern(container));
  nodes_[0].total += count;
  nodes_[at].total += count;
  size_t depth = 0;
  bool error_seen = false;
  for (size_t i = first; i < frames.size(); ++i) {
    auto frame = frames[i];
    if (frame.empty())
      continue;
    if (++depth == opts_.max_depth && i + 1 < frames.size()) {
      at = child(at, truncated_name_);
      nodes_[at].total += count;
      ++truncated_stacks_;
      break;
    }
    at = child(at, intern(frame));
    nodes_[at].total += count;
    if (!error_seen && starts_with(frame, "[Profiling")) {
      // "comm;[Profiling ...]"; a stack that is only the error has no comm.
      error_seen = true;
      note_error(depth > 1 ? comm : std::string_view{}, frame, count);
    }
  }
  return true;
}

void flame_tree::note_error(std::string_view comm, std::string_view text,
                            uint64_t count) {
  std::string key = sanitize_utf8(comm);
  key += '\0';
  key += sanitize_utf8(text);
  if (auto it = error_ids_.find(key); it != error_ids_.end()) {
    errors_[it->second].samples += count;
    return;
  }
  if (errors_.size() >= opts_.max_errors) {
    ++dropped_errors_;
    return;
  }
  error_ids_.emplace(key, errors_.size());
  errors_.push_back(
      profile_error{sanitize_utf8(comm), sanitize_utf8(text), count});
}

std::vector<profile_error> flame_tree::errors() const {
  auto result = errors_;
  std::stable_sort(result.begin(), result.end(),
                   [](const auto& a, const auto& b) {
                     return a.samples > b.samples;
                   });
  return result;
}

void flame_tree::take_line(const col_line& l) {
  if (l.kind == col_line_kind::header || l.kind == col_line_kind::blank)
    return;
  if (l.kind == col_line_kind::malformed) {
    ++skipped_lines_;
    return;
  }
  scratch_.clear();
  for (size_t at = 0;;) {
    auto semi = l.stack.find(';', at);
    if (semi == std::string_view::npos) {
      scratch_.push_back(l.stack.substr(at));
      break;
    }
    scratch_.push_back(l.stack.substr(at, semi - at));
    at = semi + 1;
  }
  if (!add_stack(l.container, scratch_, l.count)) {
    ++skipped_lines_;
    return;
  }
  ++stack_lines_;
}

// -- writing
// ----------------------------------------------------------------------

uint64_t flame_tree::prune_threshold() const {
  if (!(opts_.prune_fraction > 0))
    return 0;
  auto t = std::ceil(static_cast<double>(total_samples())
                     * std::min(opts_.prune_fraction, 1.0));
  return static_cast<uint64_t>(t);
}

namespace {

// Writes the nodes below the comm level depth-first, without recursion (a
// hostile profile may be deep). Returns the number of nodes written.
struct emitter {
  const std::vector<flame_tree::node>& nodes;
  uint64_t threshold;
  uint32_t pruned_name;
  std::vector<uint32_t>& remap;
  std::vector<uint32_t>& used;
  std::string* out;

  uint32_t name(uint32_t id) {
    if (remap[id] == UINT32_MAX) {
      remap[id] = static_cast<uint32_t>(used.size());
      used.push_back(id);
    }
    return remap[id];
  }

  void open(flame_tree::node_id id, size_t& count) {
    ++count;
    if (out) {
      *out += '[';
      append_uint(*out, name(nodes[id].name));
      *out += ',';
      append_uint(*out, nodes[id].total);
    }
  }

  size_t run(flame_tree::node_id top) {
    struct frame {
      flame_tree::node_id next;
      uint64_t pruned;
    };
    size_t count = 0;
    std::vector<frame> stack;
    open(top, count);
    stack.push_back({nodes[top].first_child, 0});
    while (!stack.empty()) {
      auto& f = stack.back();
      auto c = f.next;
      while (c != flame_tree::npos && nodes[c].total < threshold) {
        f.pruned += nodes[c].total;
        c = nodes[c].next_sibling;
      }
      if (c != flame_tree::npos) {
        f.next = nodes[c].next_sibling;
        if (out)
          *out += ',';
        open(c, count);
        stack.push_back({nodes[c].first_child, 0});
        continue;
      }
      if (f.pruned > 0) {
        ++count;
        if (out) {
          *out += ",[";
          append_uint(*out, name(pruned_name));
          *out += ',';
          append_uint(*out, f.pruned);
          *out += ']';
        }
      }
      if (out)
        *out += ']';
      stack.pop_back();
    }
    return count;
  }
};

} // namespace

size_t flame_tree::write_groups(std::string* out,
                                std::vector<uint32_t>& used) const {
  std::vector<uint32_t> remap(names_.size(), UINT32_MAX);
  auto threshold = prune_threshold();
  size_t count = 0;
  bool first = true;
  if (out)
    *out += '[';
  for (auto c = nodes_[0].first_child; c != npos; c = nodes_[c].next_sibling) {
    for (auto g = nodes_[c].first_child; g != npos;
         g = nodes_[g].next_sibling) {
      emitter e{nodes_, threshold, pruned_name_, remap, used, out};
      if (out) {
        if (!first)
          *out += ',';
        *out += '[';
        append_uint(*out, e.name(nodes_[c].name));
        *out += ',';
      }
      first = false;
      count += e.run(g);
      if (out)
        *out += ']';
    }
  }
  if (out)
    *out += ']';
  return count;
}

size_t flame_tree::emitted_nodes() const {
  std::vector<uint32_t> used;
  return write_groups(nullptr, used);
}

std::string flame_tree::to_json() const {
  std::vector<uint32_t> used;
  std::string groups;
  groups.reserve(nodes_.size() * 8);
  write_groups(&groups, used);

  std::string out;
  out.reserve(groups.size() + used.size() * 24 + 4096);
  out += "{\"version\":1,\"format\":";
  out += is_col() ? "\"col\"" : "\"folded\"";
  out += ",\"meta\":{";
  auto& facts = meta();
  for (size_t i = 0; i < facts.size(); ++i) {
    if (i > 0)
      out += ',';
    append_json_string(out, facts[i].first);
    out += ':';
    append_json_string(out, facts[i].second);
  }
  out += "},\"total\":";
  append_uint(out, total_samples());
  out += ",\"stack_lines\":";
  append_uint(out, stack_lines_);
  out += ",\"skipped_lines\":";
  append_uint(out, skipped_lines_);
  out += ",\"truncated_stacks\":";
  append_uint(out, truncated_stacks_);
  out += ",\"prune_threshold\":";
  append_uint(out, prune_threshold());
  out += ",\"header_error\":";
  append_json_string(out, header_error());
  out += ",\"errors\":[";
  auto errs = errors();
  for (size_t i = 0; i < errs.size(); ++i) {
    if (i > 0)
      out += ',';
    out += "{\"comm\":";
    append_json_string(out, errs[i].comm);
    out += ",\"text\":";
    append_json_string(out, errs[i].text);
    out += ",\"samples\":";
    append_uint(out, errs[i].samples);
    out += '}';
  }
  out += "],\"dropped_errors\":";
  append_uint(out, dropped_errors_);
  out += ",\"kind_names\":[";
  for (size_t i = 0; i < std::size(frame_kind_names); ++i) {
    if (i > 0)
      out += ',';
    append_json_string(out, frame_kind_names[i]);
  }
  out += "],\"names\":[";
  for (size_t i = 0; i < used.size(); ++i) {
    if (i > 0)
      out += ',';
    append_json_string(out, names_[used[i]]);
  }
  out += "],\"kinds\":[";
  for (size_t i = 0; i < used.size(); ++i) {
    if (i > 0)
      out += ',';
    append_uint(out, static_cast<uint64_t>(kinds_[used[i]]));
  }
  out += "],\"groups\":";
  out += groups;
  out += '}';
  return out;
}

} // namespace gpa::format
