#pragma once

// The data behind the flame-graph page: a profile's stacks merged into a trie
// (root -> container -> comm -> frames), its header metadata, and the
// profiler errors it carries, emitted as compact JSON for the viewer.
//
// Input is gProfiler's .col text (line 1 "# {json}", then
// "<app metadata index>;<container>;<comm>;frame;...;frame <count>") or a
// plain folded file ("comm;frame;...;frame <count>", no header), read by
// format::col_reader, whole or fed in pieces. Everything
// read from the profile is hostile: names are kept as text, made valid UTF-8,
// and escaped for JSON inside an HTML <script> element.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "format/col_reader.hpp"
#include "format/utf8.hpp"

namespace gpa::format {

/// What a frame is; it picks the frame's colour in the page. The numbers are
/// part of the JSON the viewer reads (`kind_names` lists them in order).
enum class frame_kind : uint8_t {
  /// Native code (C, C++, Go, Rust, ...): no suffix.
  native,
  /// Kernel: `_[k]`.
  kernel,
  /// Python: `_[p]`, `_[pe]`, `_[pn]`, or `func (file.py:N)`.
  python,
  /// Java: `_[j]`, JIT names such as `long Spin.f(long)`, `Ljava/lang/X`.
  java,
  /// Ruby: `_[rb]`.
  ruby,
  /// PHP: `_[php]`.
  php,
  /// .NET: `_[net]`.
  dotnet,
  /// A profiler error: `[Profiling <what>: <reason>]`.
  error,
  /// Frames too small to draw, merged into one per parent.
  pruned,
  /// The process (comm) level of the tree.
  process,
  /// The root of the tree ("all").
  root,
};

/// The names of the frame kinds, indexed by their numbers.
inline constexpr const char* frame_kind_names[]
    = {"native", "kernel", "python", "java",    "ruby", "php",
       "dotnet", "error",  "pruned", "process", "root"};

/// Classifies one frame name by its suffix or shape.
frame_kind classify_frame(std::string_view name);

/// Appends `text` to `out` as a JSON string literal (quotes included) that is
/// also safe inside an HTML <script> element: `<`, `>`, `&`, U+2028 and
/// U+2029 are written as \u escapes. `text` must be valid UTF-8.
void append_json_string(std::string& out, std::string_view text);

/// Appends `text` to `out` with HTML's special characters escaped.
void append_html_escaped(std::string& out, std::string_view text);

/// Limits applied while a profile is read and emitted.
struct tree_options {
  /// Frames (and their subtrees) holding less than this fraction of all
  /// samples are merged into one "[pruned]" child of their parent when the
  /// JSON is written; their counts are kept. 0 keeps every frame.
  double prune_fraction = 0.0001;
  /// Stacks deeper than this many frames (comm included) are cut: the frames
  /// past the limit become one "[truncated]" frame.
  size_t max_depth = 2048;
  /// Distinct profiler errors kept for the header; further ones are counted.
  size_t max_errors = 200;
};

/// One profiler error found in the profile (a `[Profiling ...]` frame).
struct profile_error {
  /// The process (comm) the error stack belongs to.
  std::string comm;
  /// The frame's text, e.g. "[Profiling timed out: py-spy]".
  std::string text;
  /// Samples of the error stacks with this comm and text.
  uint64_t samples = 0;
};

/// A profile's stacks merged into a trie, with what was read around them.
class flame_tree {
public:
  /// Index of a node; 0 is the root.
  using node_id = uint32_t;

  /// Marks "no node" in the sibling and child links.
  static constexpr node_id npos = UINT32_MAX;

  /// A node of the trie. Level 1 holds containers, level 2 comms, then
  /// frames. `total` counts the samples of every stack through the node.
  struct node {
    /// Index of its name.
    uint32_t name = 0;
    /// The first child; npos for a leaf.
    node_id first_child = npos;
    /// The next child of the same parent; npos for the last.
    node_id next_sibling = npos;
    /// Samples through this node.
    uint64_t total = 0;
  };

  /// Reads a whole .col or folded profile (feed() then finish()). Malformed
  /// lines are skipped and counted, never fatal. The text is not kept.
  explicit flame_tree(std::string_view text, tree_options opts = {});

  /// An empty tree, to be fed a profile piece by piece: memory grows with
  /// the distinct stacks, not with the text.
  explicit flame_tree(tree_options opts);

  /// Reads the next piece of the profile's text, cut anywhere.
  void feed(std::string_view chunk);

  /// Ends the text (reads an unterminated last line).
  void finish();

  /// Adds one stack: `frames` is comm first, then root frame to leaf. Empty
  /// frames are dropped; a stack without frames is ignored (returns false).
  bool add_stack(std::string_view container,
                 const std::vector<std::string_view>& frames, uint64_t count);

  /// Samples of all stacks read.
  uint64_t total_samples() const {
    return nodes_[0].total;
  }

  /// True if the text started with a .col header line ("# {...}").
  bool is_col() const {
    return reader_.header().present;
  }

  /// True if the header was refused unread because reading it would be
  /// unsafe (nested too deep, too long): the rest is not worth reading.
  bool header_refused() const {
    return reader_.header().refused;
  }

  /// Lines holding a stack that was added.
  uint64_t stack_lines() const {
    return stack_lines_;
  }

  /// Lines that were not empty, not comments and not a valid stack.
  uint64_t skipped_lines() const {
    return skipped_lines_;
  }

  /// Stacks cut at max_depth.
  uint64_t truncated_stacks() const {
    return truncated_stacks_;
  }

  /// The profiler errors, most samples first.
  std::vector<profile_error> errors() const;

  /// Distinct errors beyond tree_options::max_errors (not kept).
  uint64_t dropped_errors() const {
    return dropped_errors_;
  }

  /// Why the header line could not be read as JSON; empty if it could or if
  /// there was none.
  const std::string& header_error() const {
    return reader_.header().error;
  }

  /// Header facts worth showing (hostname, start_time, cpu_avg, ...), as
  /// key/value text, in a fixed order. Missing keys are left out.
  const std::vector<std::pair<std::string, std::string>>& meta() const {
    return reader_.header().facts;
  }

  /// Samples below which a frame is pruned when emitted (0: none).
  uint64_t prune_threshold() const;

  /// Writes the viewer's JSON (see the .cpp for its layout). Frames below
  /// prune_threshold() become one "[pruned]" child per parent; every node's
  /// count stays the sum of its children's and its own samples.
  std::string to_json() const;

  /// Nodes to_json() writes: comm nodes and everything below them,
  /// "[pruned]" nodes included (for tests and benchmarks).
  size_t emitted_nodes() const;

private:
  /// Adds one line's stack, or counts the line as skipped.
  void take_line(const col_line& line);

  /// Returns the id of `name` (made valid UTF-8), adding it if new.
  uint32_t intern(std::string_view name);

  /// Returns the child of `parent` named `name`, adding it if new.
  node_id child(node_id parent, uint32_t name);

  /// Copies `name` into the arena and returns the copy.
  std::string_view store(std::string_view name);

  /// Doubles name_slots_ and re-inserts every name.
  void grow_names();

  /// Doubles the edge table and re-inserts every edge.
  void grow_children();

  /// Adds `count` samples to the error (`comm`, `text`).
  void note_error(std::string_view comm, std::string_view text, uint64_t count);

  /// Writes the "groups" array to `out` (if not null), collecting the names
  /// it uses in `used`. Returns the nodes written.
  size_t write_groups(std::string* out, std::vector<uint32_t>& used) const;

  /// The limits.
  tree_options opts_;
  /// The trie; nodes_[0] is the root.
  std::vector<node> nodes_;
  /// Interned names, pointing into arena_.
  std::vector<std::string_view> names_;
  /// Storage of the names' bytes, in chunks that never move.
  std::vector<std::unique_ptr<char[]>> arena_;
  /// Bytes left in the last chunk of arena_.
  size_t arena_left_ = 0;
  /// Where the bytes left in the last chunk start.
  char* arena_next_ = nullptr;
  /// kinds_[i] is classify_frame(names_[i]).
  std::vector<frame_kind> kinds_;
  /// A slot of the name index: the name's hash and id + 1 (0: free).
  struct name_slot {
    /// std::hash of the name.
    size_t hash = 0;
    /// The name's id + 1; 0 marks a free slot.
    uint32_t id = 0;
  };
  /// Open-addressing index of names_.
  std::vector<name_slot> name_slots_;
  /// A slot of the edge index: (parent << 32 | name) + 1 (0: free), child.
  struct edge_slot {
    /// (parent << 32 | name) + 1; 0 marks a free slot.
    uint64_t key = 0;
    /// The child node.
    node_id child = 0;
  };
  /// Open-addressing index of the trie's edges.
  std::vector<edge_slot> child_slots_;
  /// Edges in child_slots_.
  size_t child_count_ = 0;
  /// The fields of the line being read.
  std::vector<std::string_view> scratch_;
  /// (comm, NUL, text) to index in errors_.
  std::unordered_map<std::string, size_t> error_ids_;
  /// The profiler errors in order of appearance.
  std::vector<profile_error> errors_;
  /// Splits the text into lines and reads the header.
  col_reader reader_;
  /// Name id of "[pruned]".
  uint32_t pruned_name_ = 0;
  /// Name id of "[truncated]".
  uint32_t truncated_name_ = 0;
  /// See stack_lines().
  uint64_t stack_lines_ = 0;
  /// See skipped_lines().
  uint64_t skipped_lines_ = 0;
  /// See truncated_stacks().
  uint64_t truncated_stacks_ = 0;
  /// See dropped_errors().
  uint64_t dropped_errors_ = 0;
};

} // namespace gpa::format
