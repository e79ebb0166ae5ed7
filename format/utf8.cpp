#include "format/utf8.hpp"

namespace gpa::format {

size_t utf8_sequence(std::string_view s, size_t i) {
  auto b = [&](size_t k) {
    return static_cast<unsigned char>(s[k]);
  };
  auto cont = [&](size_t k) {
    return k < s.size() && (b(k) & 0xC0) == 0x80;
  };
  unsigned char c = b(i);
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2))
      return 0;
    unsigned char d = b(i + 1);
    if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F))
      return 0; // overlong, or a UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3))
      return 0;
    unsigned char d = b(i + 1);
    if ((c == 0xF0 && d < 0x90) || (c == 0xF4 && d > 0x8F))
      return 0; // overlong, or past U+10FFFF
    return 4;
  }
  return 0;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    auto n = utf8_sequence(s, i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    auto n = utf8_sequence(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD"; // U+FFFD
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

std::string_view valid_utf8(std::string_view text, std::string& fixed) {
  if (is_valid_utf8(text))
    return text;
  fixed = sanitize_utf8(text);
  return fixed;
}

} // namespace gpa::format
