#pragma once

// The flame-graph page: one self-contained HTML document per profile, with
// the viewer (d3-flame-graph), its styles and the profile's data inline. It
// works from file:// with no network: nothing is fetched, and a
// Content-Security-Policy forbids fetching anything.

#include <string>
#include <string_view>

#include "format/flamegraph_tree.hpp"

namespace gpa::format {

/// Options of render_flamegraph().
struct flamegraph_options {
  /// Pruning and input limits.
  tree_options tree;
};

/// Renders the flame-graph page of a profile: `col_text` is gProfiler's .col
/// text (header line "# {json}" first) or a plain folded file. Never fails:
/// malformed lines are skipped and counted in the page's header, and an
/// empty profile gives a page that says so.
std::string render_flamegraph(std::string_view col_text,
                              const flamegraph_options& opts = {});

/// Renders the page of an already read profile.
std::string render_flamegraph(const flame_tree& tree);

} // namespace gpa::format
