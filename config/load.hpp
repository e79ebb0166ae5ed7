#pragma once

// Fills agent_options from, lowest to highest precedence: built-in defaults,
// the default config file (/etc/gprofiler/config.ini, as gProfiler reads
// it), the config file named by --config FILE or GPROFILER_CONFIG, the
// GPROFILER_* environment variables, and the command line. A config file is
// JSON (a name ending in .json, or '{' first) or configargparse's format
// (ini_file.hpp), gProfiler's.

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/options.hpp"

namespace gpa::config {

/// A configuration mistake of the user. Its message names what was wrong and
/// where; main prints it and exits with status 2.
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The subcommands next to the agent itself.
inline constexpr const char* subcommands[]
    = {"collapse-perf", "flamegraph", "upload-file"};

/// Everything main needs to know about how it was called.
struct invocation {
  /// Empty for the agent, else one of `subcommands`.
  std::string command;
  /// Arguments that are not options (files of subcommands).
  std::vector<std::string> positional;
  bool help = false;
  bool version = false;
  bool print_config = false;
  /// The config file read, if any.
  std::string config_file;
  /// --file-path of upload-file.
  std::string file_path;
  /// The effective options.
  agent_options options;
  /// Things worth a warning once logging is up (unknown GPROFILER_* names).
  std::vector<std::string> warnings;
  /// Long names of the options the user set: on the command line, in the
  /// environment, or in the file to a value other than the default. Rules
  /// such as "-f is only allowed with --mode cpu" look at what was given.
  std::set<std::string> given;
};

/// Reads a whole input file the user named, at most `max_bytes` of it.
/// Throws config_error naming the file and what is wrong with it (missing,
/// not a regular file, too large). config/ does no I/O of its own: main
/// passes runtime's bounded reader (rt::read_input_file), which never blocks
/// on a FIFO nor reads a device without end.
using file_reader
    = std::function<std::string(const std::string& path, uint64_t max_bytes)>;

/// The largest config file read: 1 MiB (gProfiler's own are under 4 KiB).
inline constexpr uint64_t max_config_bytes = uint64_t{1} << 20;

/// Where gProfiler (configargparse's default_config_files) looks for its
/// config file.
inline constexpr const char* default_config_path = "/etc/gprofiler/config.ini";

/// The environment variable that moves the default config file elsewhere
/// (empty: none), for tests and packaging. Not a GPROFILER_* option.
inline constexpr const char* default_config_env = "GPA_DEFAULT_CONFIG";

/// Parses the arguments (without argv[0]) and the environment, reading the
/// config files with `read`: `default_config` first when not empty (main
/// passes default_config_path when that file exists), then the --config
/// file over it. Throws config_error. Does not check cross-option rules:
/// see validate().
invocation parse(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env,
                 const file_reader& read,
                 const std::string& default_config = {});

/// Reads the config file at `path` with `read` into `inv.options` (and
/// warnings about unsupported options into `inv.warnings`): JSON if its
/// name ends in .json or its first character other than whitespace is '{',
/// else configargparse's format. Throws config_error naming the file and
/// the line (and column, or the JSON pointer and rule); never echoes a
/// secret.
void apply_file(const std::string& path, const file_reader& read,
                invocation& inv);

/// Checks rules between options (-u needs --token and --service-name, ...).
/// Throws config_error.
void validate(const invocation& inv);

/// Whether the agent sends its logs to the API server, gProfiler's rule
/// (_should_send_logs): it uploads (-u, or upload-file), --dont-send-logs is
/// not given, GPROFILER_DONT_SEND_LOGS is not in `env` (whatever its value:
/// gProfiler looks only at whether it is set), and --profile-api-version is
/// not v1 (whose server has no logs endpoint).
bool ships_logs(const invocation& inv,
                const std::map<std::string, std::string>& env);

/// The effective configuration as JSON (the --print-config output), secrets
/// and URL passwords as the placeholder "<redacted>". It is itself a valid
/// config file: fed back with --config, the placeholder stands for "given
/// elsewhere" (--token, GPROFILER_TOKEN), and is refused if it is not.
std::string to_json(const agent_options& opts);

/// The --help text.
std::string help_text();

/// Returns the process environment as a map.
std::map<std::string, std::string> environment_map(char** envp);

} // namespace gpa::config
