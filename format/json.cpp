#include "format/json.hpp"

#include <rapidjson/error/en.h>

namespace gpa::format {

std::string json_depth_error(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i; // the escaped character, whatever it is
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > limit)
          return "nested deeper than " + std::to_string(limit)
                 + " levels at byte " + std::to_string(i);
        break;
      case ']':
      case '}':
        if (depth > 0)
          --depth;
        break;
      default: break;
    }
  }
  return {};
}

std::pair<size_t, size_t> line_and_column(std::string_view text,
                                          size_t offset) {
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

std::string parse_json(rapidjson::Document& doc, std::string_view text,
                       bool comments) {
  if (auto why = json_depth_error(text); !why.empty()) {
    doc.SetNull();
    return "JSON " + why;
  }
  if (comments)
    doc.Parse<rapidjson::kParseCommentsFlag>(text.data(), text.size());
  else
    doc.Parse(text.data(), text.size());
  if (!doc.HasParseError())
    return {};
  auto [line, column] = line_and_column(text, doc.GetErrorOffset());
  return "line " + std::to_string(line) + ", column " + std::to_string(column)
         + ": malformed JSON: "
         + rapidjson::GetParseError_En(doc.GetParseError());
}

} // namespace gpa::format
