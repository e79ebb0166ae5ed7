#pragma once

// Checks of the option values that leave the agent on the wire (HTTP header
// values, server URLs), and the one way a URL is shown in logs, errors and
// --print-config: with its password masked and its query dropped.

#include <string>
#include <string_view>

namespace gpa::config {

/// What --print-config prints in place of a secret. Given back as a value,
/// it is refused unless the real value comes from another source.
inline constexpr std::string_view placeholder = "<redacted>";

/// Returns "" if `value` can be sent as an HTTP header value, else why not:
/// a control character (CR, LF, NUL, TAB, DEL or any below 0x20) would end
/// the header or add one. The reason names the character and its byte
/// position, never the value.
std::string header_value_error(std::string_view value);

/// The parts of a server URL that check_server_url() accepted.
struct server_url {
  /// "http" or "https" (lower case).
  std::string scheme;
  /// The password of "user:password@host", or "".
  std::string password;
  /// Host name, IPv4 address or bracketed IPv6 address.
  std::string host;
  /// The port, explicit or the scheme's default.
  int port = 0;
  /// Everything after the authority ("" or "/prefix").
  std::string path;
};

/// Returns "" if `url` is a server base URL the agent can talk to, else why
/// not: scheme http or https, a host, a port in 1..65535 if one is given, no
/// query, no fragment, no whitespace or control characters. Fills `out`
/// when given and the URL is valid.
std::string check_server_url(std::string_view url, server_url* out = nullptr);

/// `url` safe to show: the password of "user:password@" replaced by `mask`
/// and the query and fragment (which may hold the API key) dropped. Works
/// on any text, valid URL or not.
std::string redact_url(std::string_view url, std::string_view mask = "***");

} // namespace gpa::config
