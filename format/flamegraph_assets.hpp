#pragma once

// The flame-graph viewer, embedded into the agent at build time: CMake runs
// format/viewer/embed.js, which generates the definitions from the
// npm packages pinned by format/viewer/package-lock.json and from our
// viewer.js / viewer.css. The installed agent needs nothing beside itself.

#include <string_view>

namespace gpa::format::assets {

/// The viewer's JavaScript (d3-selection, d3-flame-graph, viewer.js) as the
/// text of one inline <script> element.
extern const std::string_view viewer_script;

/// The CSP source that allows exactly viewer_script: "sha256-<base64>".
extern const std::string_view viewer_script_hash;

/// The viewer's CSS (d3-flame-graph's and viewer.css), one <style> element.
extern const std::string_view viewer_style;

/// The embedded libraries with versions and licences, for the page's
/// comment, e.g. "d3-selection 3.0.0 (ISC), d3-flame-graph 4.1.3 (...)".
extern const std::string_view viewer_libraries;

} // namespace gpa::format::assets
