#include "runtime/error.hpp"

#include <caf/atom.hpp>
#include <caf/message.hpp>

namespace gpa {

const char* to_string(ec x) {
  switch (x) {
    case ec::none: return "none";
    case ec::queue_full: return "queue_full";
    case ec::spawn_failed: return "spawn_failed";
    case ec::cancelled: return "cancelled";
    case ec::invalid_request: return "invalid_request";
    case ec::write_failed: return "write_failed";
    case ec::upload_failed: return "upload_failed";
    case ec::tool_failed: return "tool_failed";
    case ec::skipped: return "skipped";
  }
  return "unknown";
}

caf::error make_gpa_error(ec code, std::string context) {
  return caf::make_error(code, std::move(context));
}

std::string describe(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() == caf::atom("gpa")) {
    std::string result = to_string(static_cast<ec>(err.code()));
    auto& ctx = err.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
      result += ": ";
      result += ctx.get_as<std::string>(0);
    }
    return result;
  }
  return caf::to_string(err);
}

std::string message_of(const caf::error& err) {
  if (err && err.category() == caf::atom("gpa")) {
    auto& ctx = err.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0))
      return ctx.get_as<std::string>(0);
  }
  return describe(err);
}

std::string first_message_line(const std::string& text,
                               const std::vector<std::string>& noise) {
  size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find_first_of("\r\n", pos);
    auto line = text.substr(pos, eol == std::string::npos ? std::string::npos
                                                          : eol - pos);
    pos = eol == std::string::npos ? text.size() : eol + 1;
    auto begin = line.find_first_not_of(" \t");
    if (begin == std::string::npos)
      continue;
    line = line.substr(begin);
    bool is_noise = false;
    for (auto& n : noise)
      is_noise = is_noise || line.find(n) != std::string::npos;
    if (is_noise)
      continue;
    if (line.size() > 200)
      line = line.substr(0, 200) + "...";
    return line;
  }
  return {};
}

} // namespace gpa
