#include "config/load.hpp"

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "config/checks.hpp"
#include "config/ini_file.hpp"
#include "config/option_table.hpp"
#include "format/json.hpp"

namespace gpa::config {

namespace {

/// One option given on the command line, in order.
struct given {
  const option_spec* spec;
  option_value value;
  /// The flag as written ("-d", "--token").
  std::string flag;
};

/// Notes, once per option, that an option read by nothing (or deprecated)
/// was given.
void warn_unsupported(invocation& inv, const option_spec& spec,
                      const option_value& value, const std::string& where) {
  auto text = unsupported_warning(spec, value, where);
  if (text.empty())
    return;
  if (std::find(inv.warnings.begin(), inv.warnings.end(), text)
      == inv.warnings.end())
    inv.warnings.push_back(std::move(text));
}

/// Applies a parsed value from the command line or the environment (`where`
/// names the flag or variable), resolving aliases such as --no-java.
void apply(invocation& inv, const option_spec& spec, const option_value& value,
           const std::string& where) {
  warn_unsupported(inv, spec, value, where);
  if (!spec.alias_of.empty()) {
    auto target = find_option(spec.alias_of);
    inv.given.insert(target->name);
    if (spec.alias_value.empty()) { // --glogger-server URL
      target->set(inv.options, value);
      return;
    }
    if (!value.flag)
      return;
    std::string why;
    target->set(inv.options, *parse_value(*target, spec.alias_value, why));
    return;
  }
  inv.given.insert(spec.name);
  if (holds_placeholder(spec, value.text))
    throw config_error(where + ": '" + std::string{placeholder}
                       + "' is the placeholder that --print-config prints; "
                         "give the real value, e.g. in "
                       + spec.env_name());
  spec.set(inv.options, value);
}

bool is_subcommand(const std::string& x) {
  for (auto name : subcommands)
    if (x == name)
      return true;
  return false;
}

std::string unknown_flag(const std::string& flag, const std::string& name) {
  std::string msg = "unknown option " + flag;
  if (auto s = suggest(name); !s.empty())
    msg += " (did you mean --" + s + "?)";
  msg += "; see --help";
  return msg;
}

/// Handles a meta option (those main acts on).
void apply_meta(invocation& inv, const option_spec& spec,
                const option_value& v) {
  if (spec.name == "config")
    inv.config_file = v.text;
  else if (spec.name == "print-config")
    inv.print_config = v.flag;
  else if (spec.name == "version")
    inv.version = v.flag;
  else if (spec.name == "help")
    inv.help = v.flag;
  else if (spec.name == "file-path")
    inv.file_path = v.text;
}

option_value parse_or_throw(const option_spec& spec, const std::string& text,
                            const std::string& where) {
  std::string why;
  auto v = parse_value(spec, text, why);
  if (!v)
    throw config_error(where + ": '" + shown_value(spec, text) + "' " + why);
  return std::move(*v);
}

/// Scans the command line into `inv` (meta options) and `out` (the rest).
void scan_args(const std::vector<std::string>& args, invocation& inv,
               std::vector<given>& out) {
  size_t i = 0;
  if (!args.empty() && is_subcommand(args[0])) {
    inv.command = args[0];
    i = 1;
  }
  auto take = [&](const option_spec& spec, const std::string& flag,
                  const std::string* inline_value) {
    option_value v;
    if (spec.kind == value_kind::flag) {
      v = inline_value ? parse_or_throw(spec, *inline_value, flag)
                       : parse_or_throw(spec, "true", flag);
    } else if (inline_value) {
      v = parse_or_throw(spec, *inline_value, flag);
    } else if (spec.implicit_value
               && (i + 1 >= args.size()
                   || (args[i + 1].size() > 1 && args[i + 1][0] == '-'))) {
      v = parse_or_throw(spec, *spec.implicit_value, flag);
    } else {
      if (i + 1 >= args.size())
        throw config_error(flag + " needs a value; see --help");
      v = parse_or_throw(spec, args[++i], flag);
    }
    if (spec.meta)
      apply_meta(inv, spec, v);
    else
      out.push_back({&spec, std::move(v), flag});
  };
  bool options_done = false;
  for (; i < args.size(); ++i) {
    auto& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      inv.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg[1] == '-') {
      auto eq = arg.find('=');
      auto name
          = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      auto spec = find_option(name);
      if (!spec)
        throw config_error(unknown_flag("--" + name, name));
      if (eq == std::string::npos) {
        take(*spec, "--" + name, nullptr);
      } else {
        auto value = arg.substr(eq + 1);
        take(*spec, "--" + name, &value);
      }
      continue;
    }
    // Short options: "-d 5", "-d5", "-cv".
    for (size_t j = 1; j < arg.size(); ++j) {
      auto spec = find_short_option(arg[j]);
      std::string flag = std::string{"-"} + arg[j];
      if (!spec)
        throw config_error("unknown option " + flag + " in " + arg
                           + "; see --help");
      if (spec->kind == value_kind::flag) {
        take(*spec, flag, nullptr);
        continue;
      }
      if (j + 1 < arg.size()) {
        auto value = arg.substr(j + 1);
        take(*spec, flag, &value);
      } else {
        take(*spec, flag, nullptr);
      }
      break;
    }
  }
}

/// Applies GPROFILER_* variables.
void apply_env(const std::map<std::string, std::string>& env, invocation& inv) {
  for (auto& spec : option_table()) {
    auto i = env.find(spec.env_name());
    if (i == env.end())
      continue;
    auto where = "environment variable " + spec.env_name();
    if (spec.meta)
      continue; // GPROFILER_CONFIG is read by parse()
    // A list in brackets, as configargparse reads it: "[1, 2]".
    if (auto items = ini_list(i->second);
        items && spec.kind == value_kind::int_list) {
      option_value v;
      for (auto& item : *items) {
        auto part = parse_or_throw(spec, item, where);
        v.list.insert(v.list.end(), part.list.begin(), part.list.end());
      }
      apply(inv, spec, v, where);
      continue;
    }
    apply(inv, spec, parse_or_throw(spec, i->second, where), where);
  }
  for (auto& [name, value] : env) {
    if (name.rfind("GPROFILER_", 0) != 0)
      continue;
    bool known = std::any_of(option_table().begin(), option_table().end(),
                             [&](auto& s) {
                               return s.env_name() == name;
                             });
    if (!known)
      inv.warnings.push_back("ignoring environment variable " + name
                             + ": no such option");
  }
}

// -- JSON config file --------------------------------------------------------

std::string json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  std::string result = buf.GetString();
  if (result.size() > 40)
    result = result.substr(0, 37) + "...";
  return result;
}

/// Throws a schema violation: pointer, rule, and what the rule says.
[[noreturn]] void violation(const std::string& path, const std::string& pointer,
                            const std::string& rule, const std::string& what) {
  throw config_error("config file " + path + ": " + pointer + ": breaks rule '"
                     + rule + "': " + what);
}

/// A value of the file, safe to echo: never a secret, never a URL's
/// password, one line.
std::string shown_json(const option_spec& spec, const rapidjson::Value& v) {
  if (spec.secret)
    return std::string{placeholder};
  if (!v.IsString())
    return json_text(v);
  auto text
      = shown_value(spec, std::string{v.GetString(), v.GetStringLength()});
  if (text.size() > 38)
    text = text.substr(0, 35) + "...";
  return "\"" + text + "\"";
}

option_value read_json_value(const std::string& path, const option_spec& spec,
                             const rapidjson::Value& v) {
  auto pointer = "/" + spec.json_key();
  option_value result;
  auto wrong_type = [&](const char* expected) {
    violation(path, pointer, "type",
              std::string{"must be "} + expected + ", got "
                  + shown_json(spec, v));
  };
  switch (spec.kind) {
    case value_kind::flag:
      if (!v.IsBool())
        wrong_type("true or false");
      result.flag = v.GetBool();
      break;
    case value_kind::integer:
      if (!v.IsInt64())
        wrong_type("a whole number");
      result.integer = v.GetInt64();
      break;
    case value_kind::bytes:
      if (v.IsInt64()) {
        result.integer = v.GetInt64();
      } else if (v.IsString()) {
        std::string why;
        auto parsed = parse_value(spec, v.GetString(), why);
        if (!parsed)
          violation(path, pointer, "format", why);
        result = std::move(*parsed);
      } else {
        wrong_type("a size (a number of bytes or a string such as \"5MB\")");
      }
      break;
    case value_kind::string:
    case value_kind::choice:
      if (!v.IsString())
        wrong_type("a string");
      result.text.assign(v.GetString(), v.GetStringLength());
      break;
    case value_kind::text_list:
      if (!v.IsArray())
        wrong_type("an array of strings");
      for (rapidjson::SizeType k = 0; k < v.Size(); ++k) {
        if (!v[k].IsString())
          violation(path, pointer + "/" + std::to_string(k), "type",
                    "must be a string, got " + json_text(v[k]));
        result.texts.emplace_back(v[k].GetString(), v[k].GetStringLength());
      }
      break;
    case value_kind::int_list:
      if (!v.IsArray())
        wrong_type("an array of whole numbers");
      for (rapidjson::SizeType k = 0; k < v.Size(); ++k) {
        if (!v[k].IsInt64())
          violation(path, pointer + "/" + std::to_string(k), "type",
                    "must be a whole number, got " + json_text(v[k]));
        result.list.push_back(v[k].GetInt64());
      }
      break;
  }
  if (auto why = check_value(spec, result); !why.empty()) {
    const char* rule = "enum";
    if (spec.kind == value_kind::string)
      rule = "pattern";
    else if (spec.kind != value_kind::choice)
      rule = why.find(">=") != std::string::npos ? "minimum" : "maximum";
    violation(path, pointer, rule, why + ", got " + shown_json(spec, v));
  }
  // A placeholder is kept for now: parse() refuses it unless the
  // environment or the command line give the real value.
  return result;
}

// -- reading config files, JSON or configargparse
// ------------------------------

/// A value of a config file, checked, not yet applied.
struct file_setting {
  const option_spec* spec;
  option_value value;
  /// Where the file sets it: "config file F: /key" or "config file F: line 3".
  std::string where;
};

/// Where config files set options, by option name (the last file wins).
using origin_map = std::map<std::string, std::string>;

/// Whether a config file is JSON: its name ends in ".json", or its first
/// character other than whitespace (after a UTF-8 byte-order mark) is '{'.
/// Anything else is configargparse's format, which gProfiler reads.
bool is_json_file(const std::string& path, std::string_view text) {
  auto dot = path.rfind('.');
  if (dot != std::string::npos) {
    auto ext = path.substr(dot);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) {
      return static_cast<char>(std::tolower(c));
    });
    if (ext == ".json")
      return true;
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    text.remove_prefix(3);
  auto first = text.find_first_not_of(" \t\r\n\v\f");
  return first != std::string_view::npos && text[first] == '{';
}

std::vector<file_setting> read_json_file(const std::string& path,
                                         const std::string& text,
                                         invocation& inv) {
  rapidjson::Document doc;
  if (auto why = format::parse_json(doc, text, true); !why.empty())
    throw config_error("config file " + path + ": " + why);
  if (!doc.IsObject())
    violation(path, "/", "type",
              "the file must hold one JSON object of options, got "
                  + json_text(doc));
  // Validate everything before applying anything.
  std::vector<file_setting> values;
  for (auto& member : doc.GetObject()) {
    std::string key = member.name.GetString();
    auto spec = find_json_key(key);
    if (!spec) {
      std::string what = "unknown option '" + key + "'";
      auto as_flag = key;
      std::replace(as_flag.begin(), as_flag.end(), '_', '-');
      if (auto s = suggest(as_flag); !s.empty() && find_option(s)->stored()) {
        auto k = s;
        std::replace(k.begin(), k.end(), '-', '_');
        what += " (did you mean '" + k + "'?)";
      }
      violation(path, "/" + key, "additionalProperties", what);
    }
    values.push_back({spec, read_json_value(path, *spec, member.value),
                      "config file " + path + ": /" + key});
  }
  agent_options defaults;
  for (auto& [spec, value, where] : values) {
    // The file of --print-config lists every option: only a value other
    // than the default counts as setting an unsupported one.
    if (format_value(*spec, value)
        != format_value(*spec, spec->get(defaults))) {
      warn_unsupported(inv, *spec, value, "config file " + path);
      inv.given.insert(spec->alias_of.empty() ? spec->name : spec->alias_of);
    }
  }
  return values;
}

/// A key of a file, safe to echo in one line of an error.
std::string shown_key(const std::string& key) {
  auto text = shown_value(option_spec{}, key);
  if (text.size() > 40)
    text = text.substr(0, 37) + "...";
  return text;
}

/// Reads a file in configargparse's format (see ini_file.hpp): keys are
/// long flag names, with or without their leading "--".
std::vector<file_setting> read_ini_file(const std::string& path,
                                        const std::string& text,
                                        invocation& inv) {
  auto parsed = parse_ini(text);
  if (!parsed.error.empty())
    throw config_error("config file " + path + ": line "
                       + std::to_string(parsed.error_line) + ": "
                       + parsed.error);
  std::vector<file_setting> values;
  for (auto& s : parsed.settings) {
    auto where = "config file " + path + ": line " + std::to_string(s.line);
    auto name = s.key.rfind("--", 0) == 0 ? s.key.substr(2) : s.key;
    auto spec = find_option(name);
    if (!spec) {
      std::string what = "unknown option '" + shown_key(s.key) + "'";
      auto as_flag = name;
      std::replace(as_flag.begin(), as_flag.end(), '_', '-');
      if (auto hint = suggest(as_flag); !hint.empty())
        what += " (did you mean '" + hint + "'?)";
      throw config_error(where + ": " + what);
    }
    if (spec->meta)
      throw config_error(where + ": --" + spec->name
                         + " cannot be set in a config file; give it on "
                           "the command line");
    auto label = where + ": " + spec->name;
    option_value value;
    if (s.is_list) {
      if (spec->kind != value_kind::int_list
          && spec->kind != value_kind::text_list)
        throw config_error(label + ": takes one value, not a list");
      for (auto& item : s.items) {
        auto part = parse_or_throw(*spec, item, label);
        value.list.insert(value.list.end(), part.list.begin(), part.list.end());
        value.texts.insert(value.texts.end(), part.texts.begin(),
                           part.texts.end());
      }
    } else {
      value = parse_or_throw(*spec, s.value, label);
    }
    // "no-java = false" sets nothing, as in configargparse.
    if (spec->alias_of.empty() || value.flag) {
      warn_unsupported(inv, *spec, value, where);
      inv.given.insert(spec->alias_of.empty() ? spec->name : spec->alias_of);
    }
    values.push_back({spec, std::move(value), where});
  }
  return values;
}

/// Reads the config file at `path`, JSON or configargparse's format.
std::vector<file_setting> read_config_file(const std::string& path,
                                           const file_reader& read,
                                           invocation& inv) {
  auto text = read(path, max_config_bytes);
  return is_json_file(path, text) ? read_json_file(path, text, inv)
                                  : read_ini_file(path, text, inv);
}

/// Applies checked values of a file, noting in `origins` where each was set.
void apply_settings(invocation& inv, const std::vector<file_setting>& values,
                    origin_map& origins) {
  for (auto& [spec, value, where] : values) {
    if (!spec->alias_of.empty()) {
      auto target = find_option(spec->alias_of);
      if (spec->alias_value.empty()) { // glogger-server = URL
        target->set(inv.options, value);
        origins[target->name] = where;
        continue;
      }
      if (!value.flag)
        continue;
      std::string why;
      target->set(inv.options, *parse_value(*target, spec->alias_value, why));
      origins[target->name] = where;
      continue;
    }
    spec->set(inv.options, value);
    origins[spec->name] = where;
  }
}

/// Formats one --help entry: the flag on the left, the text wrapped in a
/// column on the right, 80 characters wide.
std::string wrap(const std::string& left, const std::string& text) {
  constexpr size_t column = 32;
  constexpr size_t width = 80;
  std::string result = left;
  std::string line;
  auto flush_line = [&] {
    if (result.size() >= column || result.find('\n') != std::string::npos) {
      if (!result.empty() && result.back() != '\n')
        result += '\n';
      result += std::string(column, ' ');
    } else {
      result += std::string(column - result.size(), ' ');
    }
    result += line + '\n';
    line.clear();
  };
  std::istringstream words(text);
  std::string word;
  while (words >> word) {
    if (!line.empty() && column + line.size() + 1 + word.size() > width) {
      flush_line();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty())
    flush_line();
  return result;
}

/// The rules between options that gProfiler's parse_cmd_args enforces, with
/// its messages.
void validate_gprofiler_rules(const invocation& inv) {
  auto& o = inv.options;
  auto& c = o.compat;
  auto given = [&](const char* name) {
    return inv.given.count(name) > 0;
  };
  if (c.perf_event_period != 0 && given("profiling-frequency"))
    throw config_error("--perf-event-period and -f/--frequency are mutually "
                       "exclusive. Use --perf-event-period for period-based "
                       "sampling or -f for frequency-based sampling.");
  if (c.profiling_mode == "cpu" && !c.alloc_interval.empty())
    throw config_error("--alloc-interval is only allowed in allocation "
                       "profiling (--mode=allocation)");
  if (c.profiling_mode == "allocation" && given("profiling-frequency"))
    throw config_error(
        "-f|--frequency is only allowed in cpu profiling (--mode=cpu)");
  auto& perf = o.perf.mode;
  if (c.profiling_mode == "cpu" && (perf == "dwarf" || perf == "smart")
      && o.scheduler.frequency > max_dwarf_frequency)
    throw config_error("--profiling-frequency|-f can't be larger than 100 "
                       "when using --perf-mode 'smart' or 'dwarf'");
  auto& node = o.runtimes.nodejs_mode;
  if ((node == "perf" || node == "attach-maps") && perf != "fp"
      && perf != "smart")
    throw config_error("--nodejs-mode perf or attach-maps requires "
                       "--perf-mode 'fp' or 'smart'");
  // gProfiler's PHPSpyProfiler.MIN_DURATION: phpspy runs commands at its
  // start that take a while (gProfiler refuses to start, with this message).
  if (o.runtimes.php_mode == "phpspy"
      && o.scheduler.duration < std::chrono::seconds(3))
    throw config_error("Minimum duration for PHPSpyProfiler is 3 (given "
                       + std::to_string(o.scheduler.duration.count())
                       + "), raise the duration in order to use this "
                         "profiler");
  if (c.profile_spawned_processes && given("pids"))
    throw config_error("--pids is not allowed when profiling spawned "
                       "processes");
  if (c.enable_heartbeat_server) {
    if (!o.upload.enabled && inv.command != "upload-file")
      throw config_error("--enable-heartbeat-server requires "
                         "--upload-results to be enabled");
    if (o.upload.token.empty())
      throw config_error("--enable-heartbeat-server requires --token to be "
                         "provided");
    if (o.upload.service_name.empty())
      throw config_error("--enable-heartbeat-server requires --service-name "
                         "to be provided");
  }
  if (c.perf_event_period != 0 && c.perf_event.empty())
    throw config_error(
        "--perf-event-period requires --perf-event to be specified");
  if (!c.hw_events_file.empty() && c.perf_event.empty())
    throw config_error(
        "--hw-events-file requires --perf-event to be specified");
  if (!c.perf_event.empty() && c.profiling_mode != "cpu")
    throw config_error("--perf-event is only supported in cpu profiling mode "
                       "(--mode=cpu)");
}

} // namespace

void apply_file(const std::string& path, const file_reader& read,
                invocation& inv) {
  origin_map origins;
  apply_settings(inv, read_config_file(path, read, inv), origins);
}

invocation parse(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env,
                 const file_reader& read, const std::string& default_config) {
  invocation inv;
  std::vector<given> cli;
  scan_args(args, inv, cli);
  if (inv.help || inv.version)
    return inv;
  // The config file named on the command line wins over GPROFILER_CONFIG.
  if (inv.config_file.empty()) {
    if (auto i = env.find("GPROFILER_CONFIG"); i != env.end())
      inv.config_file = i->second;
  }
  // As configargparse: the default file, then the named one over it.
  origin_map origins;
  if (!default_config.empty())
    apply_settings(inv, read_config_file(default_config, read, inv), origins);
  if (!inv.config_file.empty())
    apply_settings(inv, read_config_file(inv.config_file, read, inv), origins);
  apply_env(env, inv);
  // A flag that extends (--pids) adds up over the command line; its first
  // occurrence replaces what the file and the environment said.
  std::set<const option_spec*> seen;
  for (auto& g : cli) {
    if (g.spec->extend && !seen.insert(g.spec).second) {
      auto v = g.spec->get(inv.options);
      v.list.insert(v.list.end(), g.value.list.begin(), g.value.list.end());
      v.texts.insert(v.texts.end(), g.value.texts.begin(), g.value.texts.end());
      apply(inv, *g.spec, v, g.flag);
    } else {
      apply(inv, *g.spec, g.value, g.flag);
    }
  }
  // What is still a placeholder came from the file (the command line and
  // the environment refuse it at once): the real value was not given.
  for (auto& spec : option_table()) {
    if (spec.stored() && spec.kind == value_kind::string
        && holds_placeholder(spec, spec.get(inv.options).text))
      throw config_error(
          origins[spec.name] + " holds the placeholder '"
          + std::string{placeholder}
          + "' that --print-config prints; give the real value with --"
          + spec.name + " or " + spec.env_name());
  }
  // A token over plain http to another host can be read on the way; to
  // loopback (a local Studio, a tunnel's end) it never leaves the host.
  auto& up = inv.options.upload;
  server_url url;
  auto loopback = [](const std::string& host) {
    return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"
           || host == "[::1]";
  };
  if ((up.enabled || inv.command == "upload-file") && !up.token.empty()
      && check_server_url(up.server_host, &url).empty() && url.scheme == "http"
      && !loopback(url.host))
    inv.warnings.push_back("--server-host " + redact_url(up.server_host)
                           + " is plain http: the API token travels "
                             "unencrypted; use https://");
  // The log shipper sends the token too (X-Token).
  auto& api = inv.options.compat.api_server;
  if (ships_logs(inv, env) && !up.token.empty()
      && check_server_url(api, &url).empty() && url.scheme == "http"
      && !loopback(url.host))
    inv.warnings.push_back("--api-server " + redact_url(api)
                           + " is plain http: the API token travels "
                             "unencrypted with the logs; use https://");
  // gProfiler's re.search raises on a bad pattern, and the Java app id is
  // then dropped; ours is too (runtime/app_id.cpp), so say so once.
  for (auto& filter : inv.options.compat.app_id_args_filter) {
    try {
      std::regex re(filter, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      inv.warnings.push_back("--app-id-args-filter '" + filter
                             + "' is not a regular expression (" + e.what()
                             + "): Java processes get no app id while it is "
                               "set, as in gProfiler");
    }
  }
  return inv;
}

bool ships_logs(const invocation& inv,
                const std::map<std::string, std::string>& env) {
  auto& o = inv.options;
  bool uploads = o.upload.enabled || inv.command == "upload-file";
  return uploads && !o.compat.dont_send_logs
         && env.find("GPROFILER_DONT_SEND_LOGS") == env.end()
         && o.compat.profile_api_version != "v1";
}

void validate(const invocation& inv) {
  auto& o = inv.options;
  if (!inv.command.empty() && inv.command != "upload-file"
      && inv.positional.size() > 1)
    throw config_error(inv.command + " takes at most one file, got "
                       + std::to_string(inv.positional.size()));
  if (inv.command.empty() && !inv.positional.empty())
    throw config_error("unexpected argument '" + inv.positional[0]
                       + "'; options start with - (see --help)");
  bool uploads = o.upload.enabled || inv.command == "upload-file";
  if (uploads && (o.upload.token.empty() || o.upload.service_name.empty()))
    throw config_error(
        std::string{inv.command == "upload-file" ? "upload-file"
                                                 : "--upload-results"}
        + " needs --token and --service-name (or GPROFILER_TOKEN and "
          "GPROFILER_SERVICE_NAME)");
  if (inv.command == "upload-file" && inv.file_path.empty())
    throw config_error("upload-file needs --file-path FILE");
  if (inv.command.empty() && !inv.print_config && o.output.dir.empty()
      && !o.upload.enabled)
    throw config_error("nothing to do: give --output-dir DIR, "
                       "--upload-results, or both (see --help)");
  auto ascending = [](int64_t a, int64_t b, int64_t c, const char* what) {
    if (!(a < b && b < c))
      throw config_error(std::string{what}
                         + " thresholds must rise: warning < critical < "
                           "emergency, got "
                         + std::to_string(a) + ", " + std::to_string(b) + ", "
                         + std::to_string(c));
  };
  validate_gprofiler_rules(inv);
  ascending(o.monitor.agent_warning_mb, o.monitor.agent_critical_mb,
            o.monitor.agent_emergency_mb, "agent-rss-*-mb");
  ascending(o.monitor.tree_warning_mb, o.monitor.tree_critical_mb,
            o.monitor.tree_emergency_mb, "tree-rss-*-mb");
}

std::string to_json(const agent_options& opts) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  for (auto& spec : option_table()) {
    if (!spec.stored())
      continue;
    w.Key(spec.json_key().c_str());
    auto v = spec.get(opts);
    switch (spec.kind) {
      case value_kind::flag: w.Bool(v.flag); break;
      case value_kind::integer:
      case value_kind::bytes: w.Int64(v.integer); break;
      case value_kind::int_list:
        w.StartArray();
        for (auto x : v.list)
          w.Int64(x);
        w.EndArray();
        break;
      case value_kind::text_list:
        w.StartArray();
        for (auto& x : v.texts)
          w.String(x.c_str(), static_cast<rapidjson::SizeType>(x.size()));
        w.EndArray();
        break;
      default: w.String(format_value(spec, v).c_str());
    }
  }
  w.EndObject();
  return std::string{buf.GetString()} + "\n";
}

std::string help_text() {
  std::ostringstream out;
  out << "Usage: gprofiler-agent [OPTIONS]\n"
         "       gprofiler-agent collapse-perf [FILE|-]  (perf script text to "
         "stacks)\n"
         "       gprofiler-agent flamegraph FILE.col     (flame-graph page to "
         "stdout)\n"
         "       gprofiler-agent upload-file --file-path FILE [OPTIONS]\n"
         "\n"
         "Profiles the whole host, window after window, and writes the "
         "profiles to\n"
         "--output-dir and/or uploads them (--upload-results).\n"
         "\n"
         "Every option can also be set in the environment as GPROFILER_<NAME> "
         "(e.g.\n"
         "GPROFILER_PROFILING_DURATION=30) and in a config file: gProfiler's "
         "format\n"
         "(profiling-duration = 30) or JSON (\"profiling_duration\": 30). "
         "Precedence:\n"
         "defaults < /etc/gprofiler/config.ini < --config FILE < environment "
         "< command\n"
         "line.\n";
  agent_options defaults;
  std::string group;
  for (auto& spec : option_table()) {
    if (spec.group != group) {
      group = spec.group;
      out << "\n" << group << ":\n";
    }
    std::string left = "  ";
    left += spec.short_name ? std::string{"-"} + spec.short_name + ", "
                            : std::string{"    "};
    left += "--" + spec.name;
    switch (spec.kind) {
      case value_kind::flag: break;
      case value_kind::integer: left += " N"; break;
      case value_kind::bytes: left += " SIZE"; break;
      case value_kind::int_list: left += " PID,..."; break;
      case value_kind::text_list: left += " TEXT"; break;
      case value_kind::choice: {
        left += " {";
        for (size_t k = 0; k < spec.choices.size(); ++k)
          left += (k ? "," : "") + spec.choices[k];
        left += "}";
        break;
      }
      default: left += " TEXT";
    }
    std::string text = spec.help;
    if (spec.unsupported && spec.deprecated.empty())
      text += " (not supported yet)";
    if (spec.stored() && !spec.secret && spec.kind != value_kind::flag) {
      auto d = format_value(spec, spec.get(defaults));
      if (!d.empty())
        text += " (default: " + d + ")";
    }
    out << wrap(left, text);
  }
  return out.str();
}

std::map<std::string, std::string> environment_map(char** envp) {
  std::map<std::string, std::string> result;
  for (auto p = envp; p && *p; ++p) {
    std::string entry = *p;
    auto eq = entry.find('=');
    if (eq != std::string::npos)
      result.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return result;
}

} // namespace gpa::config
