#pragma once

// One table describes every option once: its flag, short flag, group, help,
// type and rules, and how it reads and writes agent_options. The command
// line, the GPROFILER_* environment, the JSON config file, --help and
// --print-config are all driven by it, so they cannot disagree.

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/options.hpp"

namespace gpa::config {

/// The type of an option's value.
enum class value_kind {
  /// A boolean; on the command line a flag without a value.
  flag,
  /// A whole number within [min, max].
  integer,
  /// A byte count; accepts "5MB", "512KB", "1GB" or a plain number.
  bytes,
  /// Free text.
  string,
  /// One of `choices`.
  choice,
  /// Comma-separated whole numbers ("1,2,3"); a JSON array in files.
  int_list,
  /// Texts, one per occurrence of the flag (argparse's action="append");
  /// a JSON array of strings in files.
  text_list,
};

/// What a text value must look like, beyond its kind.
enum class text_rule {
  /// Anything.
  any,
  /// Sent as an HTTP header value: no control characters (CR, LF, ...).
  header,
  /// A server base URL (check_server_url), required.
  url,
  /// A server base URL, or empty for "off".
  optional_url,
  /// Comma-separated items, each one of `choices`.
  choice_list,
  /// An absolute path to a unix socket (at most 107 bytes), or empty for
  /// "none"; each element of a text list.
  socket_path,
  /// A pgrep pattern (--php-proc-filter): a POSIX extended regular
  /// expression, not empty, not starting with '-' (no pgrep options), no
  /// control characters.
  process_pattern,
};

/// A parsed value of any kind.
struct option_value {
  bool flag = false;
  int64_t integer = 0;
  std::string text;
  std::vector<int64_t> list;
  std::vector<std::string> texts;
};

/// One option.
struct option_spec {
  /// Long flag name without dashes, e.g. "profiling-duration".
  std::string name;
  /// Short flag letter, or 0.
  char short_name = 0;
  /// Heading under which --help lists it.
  std::string group;
  /// One line of help.
  std::string help;
  value_kind kind = value_kind::string;
  /// Range of integer and bytes values.
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
  /// Allowed values of a choice.
  std::vector<std::string> choices;
  /// A choice that may also be empty (gProfiler's None).
  bool allow_empty = false;
  /// Choices stored as another (gProfiler's legacy "none" as "disabled").
  std::vector<std::pair<std::string, std::string>> synonyms;
  /// Choices accepted but not built yet: warned about like `unsupported`.
  std::vector<std::string> unsupported_choices;
  /// Given several times on the command line, the values add up
  /// (argparse's action="extend" and "append"); otherwise the last wins.
  bool extend = false;
  /// The value of the flag given without one (argparse's nargs="?").
  std::optional<std::string> implicit_value;
  /// Deprecated by gProfiler: the warning it logs when the option is set.
  std::string deprecated;
  /// Rule of string values.
  text_rule rule = text_rule::any;
  /// Never printed or logged (tokens).
  bool secret = false;
  /// Parsed but read by nothing yet: --help says "(not supported yet)" and
  /// parse() warns when it is given.
  bool unsupported = false;
  /// For an `unsupported` option that does part of its job: what it does and
  /// what not (the warning says this instead of "it has no effect").
  std::string partial;
  /// Not stored in agent_options (--config, --help, ...); main handles it.
  bool meta = false;
  /// For alias flags such as --no-java: the option it sets, and to what
  /// (a flag alias), or, with an empty alias_value, an alias that takes a
  /// value and passes it on (--glogger-server for --api-server).
  /// Aliases exist on the command line and in the environment only.
  std::string alias_of;
  std::string alias_value;
  /// Writes a validated value into the options.
  std::function<void(agent_options&, const option_value&)> set;
  /// Reads the current value (for --print-config and defaults in --help).
  std::function<option_value(const agent_options&)> get;

  /// "GPROFILER_PROFILING_DURATION".
  std::string env_name() const;
  /// "profiling_duration": the key in config files and --print-config.
  std::string json_key() const;
  /// Whether the option is stored in agent_options and appears in files.
  bool stored() const {
    return !meta && alias_of.empty();
  }
};

/// If setting `spec` to `value` asks for a feature that is not built yet,
/// or is deprecated, the warning to log at start (naming `where` it was
/// set); else an empty string.
std::string unsupported_warning(const option_spec& spec,
                                const option_value& value,
                                const std::string& where);

/// All options, in --help order.
const std::vector<option_spec>& option_table();

/// Finds an option by its long name, or nullptr.
const option_spec* find_option(const std::string& name);

/// Finds an option by its short letter, or nullptr.
const option_spec* find_short_option(char letter);

/// Finds an option by its config-file key, or nullptr.
const option_spec* find_json_key(const std::string& key);

/// Parses `text` as a value of `spec`; on failure returns std::nullopt and
/// sets `why` to the rule broken (e.g. "must be >= 1").
std::optional<option_value>
parse_value(const option_spec& spec, const std::string& text, std::string& why);

/// Checks range and choices of an already typed value; returns the broken
/// rule, or an empty string.
std::string check_value(const option_spec& spec, const option_value& value);

/// Renders a value the way the user would type it; secrets as the
/// placeholder, URLs with their password masked by the placeholder.
std::string format_value(const option_spec& spec, const option_value& value);

/// Whether `text` is, or holds, the placeholder --print-config prints for a
/// secret: the whole value of a secret, the password of a URL.
bool holds_placeholder(const option_spec& spec, const std::string& text);

/// `text`, a value of `spec` as the user gave it, safe to echo in an error:
/// a secret as the placeholder, a URL with its password masked, control
/// characters escaped (\r, \n, \xNN) so that the error stays one line.
std::string shown_value(const option_spec& spec, const std::string& text);

/// Returns the closest option name to `name`, or an empty string.
std::string suggest(const std::string& name);

} // namespace gpa::config
