#pragma once

// Parsing JSON that the agent did not write (config files, .col headers,
// servers' answers) safely. RapidJSON parses and destroys documents
// recursively, so a deeply nested input would overflow the stack: every
// parse of untrusted JSON goes through parse_json(), which refuses input
// nested deeper than a limit before RapidJSON sees it.

#include <cstddef>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace gpa::format {

/// The deepest nesting of arrays and objects accepted in JSON the agent
/// reads. gProfiler's own documents nest 4 levels at most.
inline constexpr size_t max_json_depth = 64;

/// Returns "" if `text` nests arrays and objects at most `limit` levels
/// deep, else why not ("nested deeper than 64 levels at byte 1234"). Strings
/// (with their escapes) are skipped, so brackets inside them do not count.
/// Linear in the text, no allocation.
std::string json_depth_error(std::string_view text,
                             size_t limit = max_json_depth);

/// Parses `text` into `doc` after checking its depth. Returns "" on success,
/// else what is wrong and where ("line 3, column 7: Missing a comma..." or
/// the depth error). `comments` accepts // and /* */ comments (config
/// files).
std::string parse_json(rapidjson::Document& doc, std::string_view text,
                       bool comments = false);

/// Line and column (both 1-based) of byte `offset` in `text`.
std::pair<size_t, size_t> line_and_column(std::string_view text, size_t offset);

} // namespace gpa::format
