#include "config/checks.hpp"

#include <cctype>

namespace gpa::config {

namespace {

/// A name for the control character `c`.
std::string control_name(unsigned char c) {
  switch (c) {
    case '\r': return "a carriage return (CR)";
    case '\n': return "a line feed (LF)";
    case '\0': return "a NUL byte";
    case '\t': return "a tab";
    case 0x7f: return "a DEL character";
    default: {
      static constexpr char hex[] = "0123456789abcdef";
      std::string name = "the control character 0x";
      name += hex[c >> 4];
      name += hex[c & 0xf];
      return name;
    }
  }
}

bool is_control(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

bool lower_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i])
      return false;
  return true;
}

/// Where the authority ("user:pw@host:port") of `url` starts and ends.
std::pair<size_t, size_t> authority_of(std::string_view url) {
  auto sep = url.find("://");
  size_t begin = sep == std::string_view::npos ? 0 : sep + 3;
  auto end = url.find_first_of("/?#", begin);
  if (end == std::string_view::npos)
    end = url.size();
  return {begin, end};
}

bool host_char(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_';
}

} // namespace

std::string header_value_error(std::string_view value) {
  for (size_t i = 0; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (is_control(c)) {
      std::string why = "contains " + control_name(c) + " at byte "
                        + std::to_string(i + 1) + " of "
                        + std::to_string(value.size());
      if (i + 1 == value.size() && (c == '\n' || c == '\r'))
        why += " (a trailing newline from a file?)";
      return why + "; it would break the HTTP request";
    }
  }
  return {};
}

std::string check_server_url(std::string_view url, server_url* out) {
  if (url.empty())
    return "must not be empty: give the server's base URL, e.g. "
           "https://profiler.example.com";
  for (size_t i = 0; i < url.size(); ++i) {
    auto c = static_cast<unsigned char>(url[i]);
    if (is_control(c) || c == ' ')
      return c == ' ' ? "must not contain spaces"
                      : "contains " + control_name(c);
  }
  server_url result;
  auto sep = url.find("://");
  if (sep == std::string_view::npos)
    return "needs a scheme: write https://" + redact_url(url)
           + " (or http:// for a server without TLS)";
  auto scheme = url.substr(0, sep);
  if (lower_equal(scheme, "https"))
    result.scheme = "https";
  else if (lower_equal(scheme, "http"))
    result.scheme = "http";
  else
    return "must start with https:// or http://, not "
           + std::string{scheme.substr(0, 16)} + "://";
  if (url.find('?') != std::string_view::npos)
    return "must not have a query (?...): the agent adds its own";
  if (url.find('#') != std::string_view::npos)
    return "must not have a fragment (#...)";
  auto [begin, end] = authority_of(url);
  auto authority = url.substr(begin, end - begin);
  result.path = std::string{url.substr(end)};
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos)
      result.password = std::string{userinfo.substr(colon + 1)};
    authority = authority.substr(at + 1);
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return "has an IPv6 address without its closing ']'";
    auto addr = authority.substr(1, close - 1);
    if (addr.empty())
      return "has an empty IPv6 address";
    for (auto c : addr)
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
        return "has an invalid IPv6 address";
    result.host = std::string{authority.substr(0, close + 1)};
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return "has text after the IPv6 address";
      port = rest.substr(1);
      if (port.empty())
        return "has an empty port after ':'";
    }
  } else {
    auto colon = authority.find(':');
    result.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty())
        return "has an empty port after ':'";
    }
    if (result.host.empty())
      return "has no host name";
    for (auto c : result.host)
      if (!host_char(static_cast<unsigned char>(c)))
        return "has an invalid character in its host name";
  }
  if (port.empty()) {
    result.port = result.scheme == "https" ? 443 : 80;
  } else {
    long value = 0;
    for (auto c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || value > 65535)
        return "has a port that is not a number in 1..65535";
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535)
      return "has a port that is not a number in 1..65535";
    result.port = static_cast<int>(value);
  }
  if (out)
    *out = std::move(result);
  return {};
}

std::string redact_url(std::string_view url, std::string_view mask) {
  auto cut = url.find_first_of("?#");
  if (cut != std::string_view::npos)
    url = url.substr(0, cut);
  auto [begin, end] = authority_of(url);
  auto authority = url.substr(begin, end - begin);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos)
    return std::string{url};
  auto colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos)
    return std::string{url};
  std::string result{url.substr(0, begin + colon + 1)};
  result += mask;
  result += url.substr(begin + at);
  return result;
}

} // namespace gpa::config
