#pragma once

// UTF-8 validation for text that comes from outside (process and frame names
// in .col files): the flame-graph page and the upload body must be valid
// UTF-8, so invalid bytes become U+FFFD.

#include <cstddef>
#include <string>
#include <string_view>

namespace gpa::format {

/// Length of the valid UTF-8 sequence at s[i] (1 to 4), or 0 if it is
/// invalid (overlong forms, UTF-16 surrogates and code points past U+10FFFF
/// are invalid).
size_t utf8_sequence(std::string_view s, size_t i);

/// Whether all of `s` is valid UTF-8.
bool is_valid_utf8(std::string_view s);

/// Returns `text` with every invalid UTF-8 sequence replaced by U+FFFD.
std::string sanitize_utf8(std::string_view text);

/// Returns `text` itself if it is valid UTF-8, else sanitize_utf8(text)
/// stored in `fixed` (which must outlive the result).
std::string_view valid_utf8(std::string_view text, std::string& fixed);

} // namespace gpa::format
