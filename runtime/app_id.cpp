#include "runtime/app_id.hpp"
#include "runtime/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string_view>
#include <tuple>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "format/utf8.hpp"
#include "runtime/proc.hpp"

namespace gpa::rt {

namespace {

// -- bounded reads
// ---------------------------------------------------------------

/// Reads at most `limit` bytes of an open descriptor into `out`; sets
/// `truncated` if there was more. Returns false (errno set) on a read error.
bool read_fd(int fd, size_t limit, std::string& out, bool& truncated) {
  out.clear();
  truncated = false;
  char buf[16384];
  while (out.size() < limit) {
    size_t want = std::min(sizeof buf, limit - out.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0)
      return true;
    out.append(buf, static_cast<size_t>(n));
  }
  char probe;
  ssize_t n;
  do
    n = ::read(fd, &probe, 1);
  while (n < 0 && errno == EINTR);
  truncated = n > 0;
  return true;
}

/// Reads at most `limit` bytes of a /proc file (never through a symlink).
/// Returns false with errno set if it cannot be opened or read.
bool read_proc_file(const std::string& path, size_t limit, std::string& out,
                    bool* truncated = nullptr) {
  int fd = ::open(path.c_str(),
                  O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return false;
  fd_guard guard{fd};
  bool cut = false;
  if (!read_fd(fd, limit, out, cut))
    return false;
  if (truncated)
    *truncated = cut;
  return true;
}

/// readlink, bounded to 4096 bytes. Returns false with errno set on error.
bool read_link(const std::string& path, std::string& out) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0)
    return false;
  out.assign(buf, static_cast<size_t>(n));
  return true;
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

/// psutil's readlink: cut at a NUL, drop a " (deleted)" suffix when the path
/// does not exist.
std::string psutil_link(std::string path) {
  if (auto nul = path.find('\0'); nul != std::string::npos)
    path.resize(nul);
  static const std::string deleted = " (deleted)";
  if (path.size() >= deleted.size()
      && path.compare(path.size() - deleted.size(), deleted.size(), deleted)
             == 0) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
      path.resize(path.size() - deleted.size());
  }
  return path;
}

/// Opens `path` (absolute as the process sees it) for reading inside the
/// directory `root` as if it were "/": symlinks, absolute ones included, and
/// ".." never leave it (openat2 RESOLVE_IN_ROOT). Reads at most `limit`
/// bytes of a regular file. On failure returns false and sets `why`.
bool read_in_root(const std::string& root, const std::string& path,
                  size_t limit, std::string& out, std::string& why) {
  int fd = open_in_root(root, path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) {
    why = path + ": " + std::strerror(errno);
    return false;
  }
  fd_guard guard{static_cast<int>(fd)};
  struct stat st;
  if (::fstat(guard.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    why = path + ": not a regular file";
    return false;
  }
  bool truncated = false;
  if (!read_fd(guard.fd, limit, out, truncated)) {
    why = path + ": " + std::strerror(errno);
    return false;
  }
  if (truncated) {
    why = path + ": larger than " + std::to_string(limit) + " bytes";
    return false;
  }
  return true;
}

// -- Python-compatible string helpers
// -------------------------------------------

/// Python's str.isspace for the ASCII range.
bool py_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

std::string py_strip(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && py_space(s[b]))
    ++b;
  while (e > b && py_space(s[e - 1]))
    --e;
  return std::string{s.substr(b, e - b)};
}

std::string py_rstrip(std::string_view s) {
  size_t e = s.size();
  while (e > 0 && py_space(s[e - 1]))
    --e;
  return std::string{s.substr(0, e)};
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && s.substr(s.size() - suffix.size()) == suffix;
}

/// os.path.basename.
std::string_view basename(std::string_view p) {
  auto slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

/// os.path.join(a, b) for two parts.
std::string path_join(const std::string& a, const std::string& b) {
  if (starts_with(b, "/") || a.empty())
    return b;
  if (a.back() == '/')
    return a + b;
  return a + "/" + b;
}

/// pathlib's parts of a path, without its root: empty and "." components
/// dropped, ".." kept.
std::deque<std::string> path_parts(std::string_view p) {
  std::deque<std::string> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos)
      j = p.size();
    auto part = p.substr(i, j - i);
    if (!part.empty() && part != ".")
      parts.emplace_back(part);
    i = j + 1;
  }
  return parts;
}

/// Python's str.splitlines() for the line breaks that occur in text files.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n' || c == '\r' || c == '\v' || c == '\f'
        || (c >= '\x1c' && c <= '\x1e')) {
      lines.push_back(text.substr(start, i - start));
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
        ++i;
      start = i + 1;
    }
  }
  if (start < text.size())
    lines.push_back(text.substr(start));
  return lines;
}

// -- the identifiers
// ---------------------------------------------------------------

/// An identifier raised: gProfiler logs it and tries the next identifier.
struct identifier_failed {
  std::string why;
};

using args_t = std::vector<std::string>;
/// An argument, or gProfiler's _NON_AVAILABLE_ARG (nullopt).
using opt_arg = std::optional<std::string>;

/// Python's `a or b` for arguments: b when a is missing or empty.
bool falsy(const opt_arg& a) {
  return !a || a->empty();
}

/// _get_cli_arg_by_name.
opt_arg arg_by_name(const args_t& args, std::string_view name,
                    bool check_for_equals_arg = false,
                    bool check_for_short_prefix_arg = false) {
  auto it = std::find(args.begin(), args.end(), name);
  if (it != args.end()) {
    if (it + 1 == args.end())
      throw identifier_failed{"IndexError: nothing follows "
                              + std::string{name}};
    return *(it + 1);
  }
  if (check_for_equals_arg)
    for (auto& arg : args) {
      auto eq = arg.find('=');
      if (eq != std::string::npos
          && std::string_view{arg}.substr(0, eq) == name)
        return arg.substr(eq + 1);
    }
  if (check_for_short_prefix_arg)
    for (auto& arg : args)
      if (starts_with(arg, name))
        return arg.substr(name.size());
  return std::nullopt;
}

/// _get_cli_arg_by_index.
opt_arg arg_by_index(const args_t& args, size_t index) {
  if (index < args.size())
    return args[index];
  return std::nullopt;
}

bool arg_basename_is(const args_t& args, size_t index, std::string_view name) {
  auto a = arg_by_index(args, index);
  return a && basename(*a) == name;
}

/// _is_python_bin: basename matches ^python([23](\.\d{1,2})?)?$ (Python's
/// `$` also matches before one final newline).
bool is_python_bin(std::string_view bin) {
  auto b = basename(bin);
  if (ends_with(b, "\n"))
    b.remove_suffix(1);
  if (!starts_with(b, "python"))
    return false;
  b.remove_prefix(6);
  if (b.empty())
    return true;
  if (b[0] != '2' && b[0] != '3')
    return false;
  b.remove_prefix(1);
  if (b.empty())
    return true;
  if (b[0] != '.')
    return false;
  b.remove_prefix(1);
  return (b.size() == 1 || b.size() == 2)
         && std::all_of(b.begin(), b.end(), [](char c) {
              return c >= '0' && c <= '9';
            });
}

/// _is_python_m_proc.
bool is_python_m_proc(const args_t& args) {
  return args.size() >= 3 && is_python_bin(args[0]) && args[1] == "-m";
}

/// resolve_proc_root_links(root, path)[len(root):]: the path with the
/// process's symlinks resolved component by component inside its root, as
/// gProfiler shows it ("." dropped, ".." kept). Links are looked up in the
/// lexically normalized location, which never leaves the root.
std::string resolve_in_root(const process_facts& p, const std::string& path) {
  if (!starts_with(path, "/"))
    throw identifier_failed{"AssertionError: " + path + " is not absolute"};
  auto parts = path_parts(path);
  std::vector<std::string> shown, real;
  std::set<std::string> seen;
  auto joined = [](const std::vector<std::string>& v) {
    std::string s;
    for (auto& c : v)
      s += "/" + c;
    return s;
  };
  int hops = 0;
  size_t steps = 0;
  while (!parts.empty()) {
    if (++steps > 4096)
      throw identifier_failed{"path too long: " + path};
    auto part = std::move(parts.front());
    parts.pop_front();
    shown.push_back(part);
    if (part == "..") {
      if (!real.empty())
        real.pop_back();
      continue;
    }
    real.push_back(part);
    auto location = p.root + joined(real);
    struct stat st;
    if (::lstat(location.c_str(), &st) != 0 || !S_ISLNK(st.st_mode))
      continue;
    auto key = joined(shown);
    if (!seen.insert(key).second || ++hops > 40)
      throw identifier_failed{"RuntimeError: symlink loop from " + key};
    std::string target;
    if (!read_link(location, target))
      throw identifier_failed{"OSError: readlink " + key + ": "
                              + std::strerror(errno)};
    auto more = path_parts(target);
    if (starts_with(target, "/")) {
      shown.clear();
      real.clear();
    } else {
      shown.pop_back();
      real.pop_back();
    }
    parts.insert(parts.begin(), more.begin(), more.end());
  }
  return joined(shown);
}

/// _append_file_to_proc_wd.
std::string append_file_to_proc_wd(const process_facts& p,
                                   const std::string& file) {
  return resolve_in_root(p, path_join(p.cwd, file));
}

/// _append_python_module_to_proc_wd: a.b -> <cwd>/a/b.py.
std::string append_python_module_to_proc_wd(const process_facts& p,
                                            std::string module) {
  if (module == "unknown app name")
    return module;
  if (!ends_with(module, ".py")) {
    std::replace(module.begin(), module.end(), '.', '/');
    module += ".py";
  }
  return append_file_to_proc_wd(p, module);
}

// Python identifiers, in gProfiler's order.

std::string gunicorn_to_app_id(const process_facts& p, const std::string& spec,
                               const char* kind) {
  auto file = spec.substr(0, spec.find(':'));
  return std::string{kind} + ": " + spec + " ("
         + append_python_module_to_proc_wd(p, file) + ")";
}

/// gunicorn_get_app_name / uvicorn_get_app_name: the first argument with a
/// ':' whose predecessor (for the first argument: the last one, as Python's
/// index -1) is not an option.
std::string wsgi_app_name(const args_t& args, bool allow_factory) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].find(':') == std::string::npos)
      continue;
    const auto& prev = args[i == 0 ? args.size() - 1 : i - 1];
    if (!starts_with(prev, "-") || (allow_factory && prev == "--factory"))
      return args[i];
  }
  return "unknown app name";
}

opt_arg gunicorn_title(const process_facts& p) {
  auto& args = p.cmdline;
  auto first = arg_by_index(args, 0);
  if (!first || !starts_with(*first, "gunicorn: "))
    return std::nullopt;
  if (std::count_if(args.begin(), args.end(),
                    [](const std::string& s) {
                      return !s.empty();
                    })
      != 1)
    return std::nullopt;
  // ^gunicorn: (?:(?:master)|(?:worker)) \[([^\]]*)\]$
  std::string_view t = *first;
  t.remove_prefix(10);
  if (starts_with(t, "master ["))
    t.remove_prefix(8);
  else if (starts_with(t, "worker ["))
    t.remove_prefix(8);
  else
    return std::nullopt;
  if (ends_with(t, "]\n"))
    t.remove_suffix(1);
  if (!ends_with(t, "]"))
    return std::nullopt;
  t.remove_suffix(1);
  if (t.find(']') != std::string_view::npos)
    return std::nullopt;
  return gunicorn_to_app_id(p, std::string{t}, "gunicorn");
}

opt_arg gunicorn(const process_facts& p) {
  if (!arg_basename_is(p.cmdline, 0, "gunicorn")
      && !arg_basename_is(p.cmdline, 1, "gunicorn"))
    return std::nullopt;
  return gunicorn_to_app_id(p, wsgi_app_name(p.cmdline, false), "gunicorn");
}

opt_arg uvicorn(const process_facts& p) {
  if (!arg_basename_is(p.cmdline, 0, "uvicorn")
      && !arg_basename_is(p.cmdline, 1, "uvicorn"))
    return std::nullopt;
  return gunicorn_to_app_id(p, wsgi_app_name(p.cmdline, true), "uvicorn");
}

// configparser.ConfigParser(strict=False) as far as uwsgi's [uwsgi] module
// needs it: sections, DEFAULT, "key = value" / "key: value", full-line
// comments, continuation lines, lower-cased keys, basic %(name)s
// interpolation. Whatever configparser raises on is a failure here too.

using ini_section = std::map<std::string, std::vector<std::string>>;

struct ini_file {
  std::map<std::string, ini_section> sections;
  ini_section defaults;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  });
  return s;
}

ini_file parse_ini(std::string_view text, const std::string& name) {
  ini_file ini;
  ini_section* cursect = nullptr;
  std::string optname;
  size_t indent_level = 0;
  bool parse_error = false;
  size_t lineno = 0;
  // Universal newlines: \n, \r\n and \r end lines.
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n' || text[i] == '\r') {
      lines.push_back(text.substr(start, i - start));
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
        ++i;
      start = i + 1;
    }
  if (start < text.size())
    lines.push_back(text.substr(start));
  for (auto line : lines) {
    ++lineno;
    auto stripped = py_strip(line);
    bool comment = starts_with(stripped, "#") || starts_with(stripped, ";");
    auto value = comment ? std::string{} : stripped;
    if (value.empty()) {
      if (!comment && cursect && !optname.empty())
        (*cursect)[optname].emplace_back();
      continue;
    }
    size_t cur_indent = 0;
    while (cur_indent < line.size() && py_space(line[cur_indent]))
      ++cur_indent;
    if (cursect && !optname.empty() && cur_indent > indent_level) {
      (*cursect)[optname].push_back(value);
      continue;
    }
    indent_level = cur_indent;
    auto close = value.rfind(']');
    if (value[0] == '[' && close != std::string::npos && close >= 2) {
      auto header = value.substr(1, close - 1);
      cursect = header == "DEFAULT" ? &ini.defaults : &ini.sections[header];
      optname.clear();
      continue;
    }
    if (!cursect)
      throw identifier_failed{"MissingSectionHeaderError: " + name + " line "
                              + std::to_string(lineno)};
    auto delim = value.find_first_of("=:");
    if (delim == std::string::npos) {
      parse_error = true;
      continue;
    }
    auto key = py_rstrip(std::string_view{value}.substr(0, delim));
    if (key.empty()) {
      parse_error = true;
      continue;
    }
    optname = lower(key);
    (*cursect)[optname] = {py_strip(std::string_view{value}.substr(delim + 1))};
  }
  if (parse_error)
    throw identifier_failed{"ParsingError: " + name};
  return ini;
}

std::string joined_value(const std::vector<std::string>& lines) {
  std::string v;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i)
      v += '\n';
    v += lines[i];
  }
  return py_rstrip(v);
}

/// BasicInterpolation of `value` with the options visible in the section.
void interpolate(const std::map<std::string, std::string>& vars,
                 std::string_view rest, std::string& out, int depth) {
  if (depth > 10)
    throw identifier_failed{"InterpolationDepthError"};
  while (!rest.empty()) {
    auto pct = rest.find('%');
    if (pct == std::string_view::npos) {
      out += rest;
      return;
    }
    out += rest.substr(0, pct);
    rest.remove_prefix(pct);
    if (rest.size() >= 2 && rest[1] == '%') {
      out += '%';
      rest.remove_prefix(2);
    } else if (rest.size() >= 2 && rest[1] == '(') {
      auto close = rest.find(')');
      if (close == std::string_view::npos || close == 2
          || close + 1 >= rest.size() || rest[close + 1] != 's')
        throw identifier_failed{"InterpolationSyntaxError"};
      auto var = lower(std::string{rest.substr(2, close - 2)});
      rest.remove_prefix(close + 2);
      auto it = vars.find(var);
      if (it == vars.end())
        throw identifier_failed{"InterpolationMissingOptionError: " + var};
      if (it->second.find('%') != std::string::npos)
        interpolate(vars, it->second, out, depth + 1);
      else
        out += it->second;
    } else {
      throw identifier_failed{"InterpolationSyntaxError"};
    }
  }
}

/// config.get("uwsgi", "module"), or nullopt for NoSectionError /
/// NoOptionError.
opt_arg ini_uwsgi_module(const ini_file& ini) {
  auto sec = ini.sections.find("uwsgi");
  if (sec == ini.sections.end())
    return std::nullopt;
  std::map<std::string, std::string> vars;
  for (auto& [k, v] : ini.defaults)
    vars[k] = joined_value(v);
  for (auto& [k, v] : sec->second)
    vars[k] = joined_value(v);
  auto it = vars.find("module");
  if (it == vars.end())
    return std::nullopt;
  std::string out;
  interpolate(vars, it->second, out, 1);
  return out;
}

void note(std::vector<std::string>* notes, std::string text) {
  if (notes)
    notes->push_back(std::move(text));
}

/// Files of a process (ini, properties) are read up to this size.
constexpr size_t max_config_file = 1024 * 1024;

std::pair<opt_arg, opt_arg> uwsgi_config(const process_facts& p,
                                         std::vector<std::string>* notes) {
  auto& args = p.cmdline;
  auto config_file = arg_by_name(args, "--ini", true);
  if (!config_file)
    config_file = arg_by_name(args, "--ini-paste", true);
  if (!config_file)
    config_file = arg_by_name(args, "--ini-paste-logged", true);
  if (!config_file) {
    std::vector<std::string> inis;
    for (auto& a : args)
      if (ends_with(a, ".ini"))
        inis.push_back(a);
    if (inis.size() > 1)
      note(notes, "uwsgi: more than one .ini file on the command line");
    else if (inis.size() == 1)
      config_file = inis[0];
  }
  if (!config_file)
    return {std::nullopt, std::nullopt};
  std::string text, why;
  if (!read_in_root(p.root, path_join(p.cwd, *config_file), max_config_file,
                    text, why))
    throw identifier_failed{"cannot read uwsgi config " + why};
  if (!format::is_valid_utf8(text))
    throw identifier_failed{"UnicodeDecodeError: " + *config_file};
  return {config_file, ini_uwsgi_module(parse_ini(text, *config_file))};
}

opt_arg uwsgi(const process_facts& p, std::vector<std::string>* notes) {
  if (!arg_basename_is(p.cmdline, 0, "uwsgi"))
    return std::nullopt;
  auto wsgi_arg = arg_by_name(p.cmdline, "-w");
  if (falsy(wsgi_arg))
    wsgi_arg = arg_by_name(p.cmdline, "--wsgi-file", true);
  if (wsgi_arg)
    return "uwsgi: " + *wsgi_arg + " ("
           + append_python_module_to_proc_wd(p, *wsgi_arg) + ")";
  auto [config_file, module] = uwsgi_config(p, notes);
  if (module)
    return "uwsgi: " + *config_file + " ("
           + append_python_module_to_proc_wd(p, *module) + ")";
  note(notes, "uwsgi: couldn't find uwsgi wsgi module, both from cmdline and "
              "from config file");
  if (config_file)
    return "uwsgi: " + *config_file;
  return std::string{"uwsgi: ini file / wsgi module not found"};
}

opt_arg celery(const process_facts& p, std::vector<std::string>* notes) {
  auto& args = p.cmdline;
  bool is_celery = arg_basename_is(args, 0, "celery")
                   || arg_basename_is(args, 1, "celery")
                   || (is_python_m_proc(args) && args[2] == "celery");
  if (!is_celery)
    return std::nullopt;
  auto app = arg_by_name(args, "-A", false, true);
  if (falsy(app))
    app = arg_by_name(args, "--app", true);
  if (!app) {
    auto queue = arg_by_name(args, "-Q", false, true);
    if (falsy(queue))
      queue = arg_by_name(args, "--queues", true);
    if (queue)
      return "celery queue: " + *queue + " (" + p.cwd + ")";
    note(notes, "celery: couldn't find positional argument -A or --app for "
                "application indication");
    return std::nullopt;
  }
  return "celery: " + *app + " (" + append_python_module_to_proc_wd(p, *app)
         + ")";
}

opt_arg pyspark(const process_facts& p) {
  if (is_python_m_proc(p.cmdline) && p.cmdline[2] == "pyspark.daemon")
    return std::string{"pyspark"};
  return std::nullopt;
}

opt_arg python_module(const process_facts& p) {
  auto first = arg_by_index(p.cmdline, 0);
  if (!first || !is_python_bin(*first))
    return std::nullopt;
  if (auto module = arg_by_name(p.cmdline, "-m"))
    return "python: -m " + *module;
  auto arg1 = arg_by_index(p.cmdline, 1);
  if (arg1 && ends_with(*arg1, ".py"))
    return "python: " + *arg1 + " (" + append_python_module_to_proc_wd(p, *arg1)
           + ")";
  return std::nullopt;
}

opt_arg node_module(const process_facts& p) {
  bool skip_next = false;
  for (size_t i = 1; i < p.cmdline.size(); ++i) {
    auto& arg = p.cmdline[i];
    if (skip_next) {
      skip_next = false;
      continue;
    }
    if (starts_with(arg, "--require="))
      continue;
    if (arg == "--require" || arg == "-r") {
      skip_next = true;
      continue;
    }
    if (ends_with(arg, ".js"))
      return "nodejs: " + arg + " (" + append_file_to_proc_wd(p, arg) + ")";
  }
  return std::nullopt;
}

opt_arg ruby_module(const process_facts& p) {
  bool skip_next = false;
  for (auto& arg : p.cmdline) {
    if (skip_next) {
      skip_next = false;
      continue;
    }
    if (starts_with(arg, "-r")) {
      if (arg.size() <= 2)
        skip_next = true;
      continue;
    }
    if (ends_with(arg, ".rb"))
      return "ruby: " + arg + " (" + append_file_to_proc_wd(p, arg) + ")";
  }
  return std::nullopt;
}

// Java.

/// Splits an option variable (JAVA_TOOL_OPTIONS, JDK_JAVA_OPTIONS,
/// _JAVA_OPTIONS) as the JVM does: on whitespace, quotes grouping.
std::vector<std::string> split_java_options(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_token = false;
  char quote = 0;
  for (char c : s) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_token = true;
    } else if (py_space(c)) {
      if (in_token)
        out.push_back(std::move(cur));
      cur.clear();
      in_token = false;
    } else {
      cur += c;
      in_token = true;
    }
  }
  if (in_token)
    out.push_back(std::move(cur));
  return out;
}

std::optional<std::string> env_value(const std::vector<std::string>& env,
                                     std::string_view name) {
  for (auto& e : env)
    if (e.size() > name.size() && starts_with(e, name) && e[name.size()] == '=')
      return e.substr(name.size() + 1);
  return std::nullopt;
}

/// Options the java launcher reads with a value in the next argument.
bool is_module_option(std::string_view a) {
  return a == "--module-path" || a == "-p" || a == "--upgrade-module-path"
         || a == "--add-modules" || a == "--enable-native-access"
         || a == "--limit-modules" || a == "--add-exports" || a == "--add-opens"
         || a == "--add-reads" || a == "--patch-module";
}

bool is_launcher_value_option(std::string_view a) {
  return a == "--class-path" || a == "-classpath" || a == "-cp"
         || a == "--module" || a == "-m" || a == "--describe-module"
         || a == "-d" || a == "--source";
}

/// The JVM leaves these out of jvm_args (they have their own counters).
bool jvm_omits(std::string_view a) {
  return starts_with(a, "-Djava.class.path")
         || starts_with(a, "-Dsun.java.command")
         || starts_with(a, "-Dsun.java.launcher");
}

/// -Xfoo style translations of the launcher's old options.
std::optional<std::string> legacy_option(std::string_view a) {
  static const std::map<std::string_view, std::string_view> exact
      = {{"-verbosegc", "-verbose:gc"},
         {"-t", "-Xt"},
         {"-tm", "-Xtm"},
         {"-debug", "-Xdebug"},
         {"-noclassgc", "-Xnoclassgc"},
         {"-Xfuture", "-Xverify:all"},
         {"-verify", "-Xverify:all"},
         {"-verifyremote", "-Xverify:remote"},
         {"-noverify", "-Xverify:none"},
         {"-Xdiag", "-Dsun.java.launcher.diag=true"},
         {"--show-module-resolution", "-Djdk.module.showModuleResolution=true"},
         {"--validate-modules", "-Djdk.module.validation=true"}};
  if (auto it = exact.find(a); it != exact.end())
    return std::string{it->second};
  for (std::string_view p : {"-ss", "-oss", "-ms", "-mx"})
    if (starts_with(a, p))
      return "-X" + std::string{a.substr(1)};
  return std::nullopt;
}

/// Launcher options that never reach the VM.
bool launcher_only(std::string_view a) {
  static const std::set<std::string_view> names = {"-server",
                                                   "-client",
                                                   "-showversion",
                                                   "--show-version",
                                                   "--dry-run",
                                                   "--list-modules",
                                                   "-checksource",
                                                   "-cs",
                                                   "-noasyncgc",
                                                   "--disable-@files",
                                                   "-jre-restrict-search",
                                                   "-no-jre-restrict-search",
                                                   "--show-resolved-modules"};
  return names.count(a) > 0 || starts_with(a, "-splash:")
         || starts_with(a, "-XshowSettings") || starts_with(a, "-version:")
         || starts_with(a, "-XXaltjvm=") || starts_with(a, "-J");
}

bool regex_search_bounded(const std::regex& re, const std::string& arg) {
  // libstdc++'s matcher recurses per character: longer arguments are not
  // searched rather than risking the stack.
  if (arg.size() > 4096)
    return false;
  try {
    return std::regex_search(arg, re);
  } catch (const std::regex_error&) {
    return false;
  }
}

opt_arg java_jar(const process_facts& p, const app_id_options& o,
                 std::vector<std::string>* notes) {
  if (p.cmdline.empty() || basename(p.cmdline[0]) != "java") {
    note(notes, "java: not started by the java launcher, no command line to "
                "read the main class from");
    return std::nullopt;
  }
  auto cl = parse_java_command_line(p.cmdline, p.environ);
  if (cl.command.empty())
    return std::nullopt;
  std::vector<std::string> java_args;
  if (!o.args_filter.empty()) {
    std::vector<std::regex> filters;
    for (auto& f : o.args_filter) {
      try {
        filters.emplace_back(f, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw identifier_failed{"re.error: " + f + ": " + e.what()};
      }
    }
    // gProfiler splits the "jvm_args:" line on single spaces.
    std::string line;
    for (size_t i = 0; i < cl.jvm_args.size(); ++i)
      line += (i ? " " : "") + cl.jvm_args[i];
    line = py_strip(line);
    size_t start = 0;
    while (true) {
      auto sp = line.find(' ', start);
      auto arg = line.substr(start, sp == std::string::npos ? std::string::npos
                                                            : sp - start);
      if (std::any_of(filters.begin(), filters.end(), [&](const std::regex& r) {
            return regex_search_bounded(r, arg);
          }))
        java_args.push_back(arg);
      if (sp == std::string::npos)
        break;
      start = sp + 1;
    }
  }
  std::string id = "java: " + cl.command;
  if (!java_args.empty()) {
    id += " (";
    for (size_t i = 0; i < java_args.size(); ++i)
      id += (i ? " " : "") + java_args[i];
    id += ")";
  }
  return id;
}

opt_arg java_spark(const process_facts& p, std::vector<std::string>* notes) {
  bool executor = std::any_of(
      p.cmdline.begin(), p.cmdline.end(), [](const std::string& a) {
        return a.find("org.apache.spark.executor") != std::string::npos;
      });
  if (!executor)
    return std::nullopt;
  auto props_path
      = path_join(p.cwd, "__spark_conf__/__spark_conf__.properties");
  std::string text, why;
  if (!read_in_root(p.root, props_path, max_config_file, text, why)) {
    note(notes, "spark props file doesn't exist: " + why);
    return std::string{"app name not found"};
  }
  if (!format::is_valid_utf8(text))
    throw identifier_failed{"UnicodeDecodeError: " + props_path};
  std::map<std::string, std::string> props;
  for (auto line : split_lines(text)) {
    if (starts_with(line, "#"))
      continue;
    auto content = line.substr(0, line.find('#'));
    auto eq = content.find('=');
    if (eq == std::string_view::npos)
      throw identifier_failed{"ValueError: line without '=' in " + props_path};
    props[std::string{content.substr(0, eq)}]
        = std::string{content.substr(eq + 1)};
  }
  if (auto it = props.find("spark.app.name"); it != props.end())
    return "spark: " + it->second;
  return std::string{"app name not found"};
}

using identifier = std::function<opt_arg()>;

/// get_app_id: the first identifier that gives an id, or all of them joined
/// with ", " (aggregate_all, Java). An identifier that fails is skipped.
std::string run_identifiers(const std::vector<identifier>& ids,
                            bool aggregate_all,
                            std::vector<std::string>* notes) {
  std::string joined;
  for (auto& id : ids) {
    try {
      auto result = id();
      if (!result)
        continue;
      if (!aggregate_all)
        return *result;
      joined += (joined.empty() ? "" : ", ") + *result;
    } catch (const identifier_failed& e) {
      note(notes, e.why);
    } catch (const std::exception& e) {
      note(notes, e.what());
    }
  }
  return joined;
}

// -- maps
// ------------------------------------------------------------------------

/// What gProfiler's pgrep_maps patterns find in one line of /proc/PID/maps.
struct maps_match {
  bool python = false;
  bool java = false;
  bool ruby = false;
};

void match_maps_line(std::string_view line, maps_match& m) {
  auto slash = line.rfind('/');
  if (slash == std::string_view::npos || slash == 0)
    return;
  auto last = line.substr(slash + 1);
  // (^.+/(lib)?python[^/]*$)
  if (starts_with(last, "python") || starts_with(last, "libpython"))
    m.python = true;
  // (^.+/ruby[^/]*$)
  if (starts_with(last, "ruby"))
    m.ruby = true;
  // (^.+/site-packages/.+?$)|(^.+/dist-packages/.+?$)
  for (std::string_view dir : {"/site-packages/", "/dist-packages/"}) {
    auto at = line.find(dir, 1);
    if (at != std::string_view::npos && at + dir.size() < line.size())
      m.python = true;
  }
  // ^.+/libjvm\.so
  auto jvm = line.find("/libjvm.so", 1);
  if (jvm != std::string_view::npos)
    m.java = true;
}

/// Scans /proc/PID/maps (at most 32 MiB) line by line.
maps_match scan_maps(const std::string& path) {
  maps_match m;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return m;
  fd_guard guard{fd};
  std::string carry;
  char buf[65536];
  size_t total = 0;
  while (total < 32u * 1024 * 1024) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    total += static_cast<size_t>(n);
    carry.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = carry.find('\n', start)) != std::string::npos;
         start = nl + 1)
      match_maps_line(std::string_view{carry}.substr(start, nl - start), m);
    carry.erase(0, start);
    if (carry.size() > 65536)
      carry.clear(); // no maps line is that long
  }
  if (!carry.empty())
    match_maps_line(carry, m);
  return m;
}

/// psutil's Process.cmdline() split of /proc/PID/cmdline.
std::vector<std::string> split_cmdline(std::string_view data) {
  std::vector<std::string> out;
  if (data.empty())
    return out;
  char sep = data.back() == '\0' ? '\0' : ' ';
  if (data.back() == sep)
    data.remove_suffix(1);
  auto split = [&out](std::string_view d, char s) {
    out.clear();
    size_t i = 0;
    while (true) {
      auto j = d.find(s, i);
      out.emplace_back(d.substr(i, j == std::string_view::npos ? j : j - i));
      if (j == std::string_view::npos)
        break;
      i = j + 1;
    }
  };
  split(data, sep);
  if (sep == '\0' && out.size() == 1
      && data.find(' ') != std::string_view::npos)
    split(data, ' ');
  return out;
}

std::string proc_dir(const std::string& proc_root, int32_t pid) {
  return proc_root + "/" + std::to_string(pid);
}

const std::string& blacklist_hit(const std::vector<std::string>& cmdline) {
  static const std::vector<std::string> blacklisted
      = {"unattended-upgrades", "networkd-dispatcher", "supervisord", "tuned"};
  static const std::string none;
  std::string joined;
  for (size_t i = 0; i < cmdline.size(); ++i)
    joined += (i ? " " : "") + cmdline[i];
  for (auto& b : blacklisted)
    if (joined.find(b) != std::string::npos)
      return b;
  return none;
}

/// The agent itself or a process it started.
bool is_agent_process(const process_facts& p, const app_id_options& o) {
  return o.agent_pid != 0 && (p.pid == o.agent_pid || p.ppid == o.agent_pid);
}

// -- JSON as Python's json.dumps (ensure_ascii)
// ----------------------------------

void json_u(std::string& out, unsigned v) {
  static const char* hex = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4)
    out += hex[(v >> shift) & 0xf];
}

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20 || c == 0x7f)
            json_u(out, c);
          else
            out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    size_t len = format::utf8_sequence(s, i);
    if (len == 0) {
      json_u(out, 0xdc00 + c); // surrogateescape
      ++i;
      continue;
    }
    unsigned cp = c & (0xff >> (len + 1));
    for (size_t k = 1; k < len; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      json_u(out, 0xd800 + (cp >> 10));
      json_u(out, 0xdc00 + (cp & 0x3ff));
    } else {
      json_u(out, cp);
    }
    i += len;
  }
  out += '"';
}

} // namespace

const char* app_runtime_name(app_runtime r) {
  switch (r) {
    case app_runtime::python: return "python";
    case app_runtime::java: return "java";
    case app_runtime::ruby: return "ruby";
    case app_runtime::node: return "node";
    case app_runtime::none: break;
  }
  return "none";
}

java_command_line
parse_java_command_line(const std::vector<std::string>& argv,
                        const std::vector<std::string>& environ) {
  java_command_line out;
  auto add = [&out](std::string a) {
    if (!jvm_omits(a))
      out.jvm_args.push_back(std::move(a));
  };
  if (auto tool = env_value(environ, "JAVA_TOOL_OPTIONS"))
    for (auto& a : split_java_options(*tool))
      add(a);
  std::vector<std::string> args;
  if (auto jdk = env_value(environ, "JDK_JAVA_OPTIONS"))
    args = split_java_options(*jdk);
  if (argv.size() > 1)
    args.insert(args.end(), argv.begin() + 1, argv.end());
  size_t i = 0;
  std::string what;
  bool have_what = false;
  for (; i < args.size() && starts_with(args[i], "-"); ++i) {
    const auto& a = args[i];
    if (a == "-jar")
      continue;
    if (is_module_option(a) || is_launcher_value_option(a)) {
      if (i + 1 >= args.size()) {
        i = args.size(); // the launcher refuses it
        break;
      }
      const auto& value = args[++i];
      if (a == "--module" || a == "-m") {
        add("-Djdk.module.main=" + value.substr(0, value.find('/')));
        what = value;
        have_what = true;
        ++i;
        break;
      }
      if (is_module_option(a))
        add((a == "-p" ? std::string{"--module-path"} : a) + "=" + value);
      continue; // class path, --describe-module, --source
    }
    if (starts_with(a, "--module=")) {
      what = a.substr(9);
      add("-Djdk.module.main=" + what.substr(0, what.find('/')));
      have_what = true;
      ++i;
      break;
    }
    if (starts_with(a, "--class-path=") || starts_with(a, "--describe-module=")
        || starts_with(a, "--source="))
      continue;
    if (launcher_only(a))
      continue;
    if (auto legacy = legacy_option(a)) {
      add(*legacy);
      continue;
    }
    add(a);
  }
  if (!have_what && i < args.size())
    what = args[i];
  if (auto under = env_value(environ, "_JAVA_OPTIONS"))
    for (auto& a : split_java_options(*under))
      add(a);
  // "java_command: <what> <args>".split(" ", 1)[0] after strip().
  auto stripped = py_strip(what);
  out.command = stripped.substr(0, stripped.find(' '));
  return out;
}

std::optional<process_facts> read_process_facts(int32_t pid,
                                                const std::string& proc_root,
                                                bool with_environ) {
  auto dir = proc_dir(proc_root, pid);
  process_facts p;
  p.pid = pid;
  p.root = dir + "/root";
  std::string data;
  bool truncated = false;
  if (!read_proc_file(dir + "/cmdline", max_cmdline_bytes, data, &truncated))
    return std::nullopt; // gone
  if (truncated)
    data.push_back('\0'); // cut inside an argument, not a rewritten title
  p.cmdline = split_cmdline(data);
  p.cmdline_truncated = truncated;
  if (read_proc_file(dir + "/stat", 4096, data)) {
    proc_stat st;
    if (parse_proc_stat(data, st))
      p.ppid = st.ppid;
  }
  if (read_proc_file(dir + "/comm", 256, data)) {
    if (!data.empty() && data.back() == '\n')
      data.pop_back();
    p.comm = data;
  }
  if (read_link(dir + "/cwd", data))
    p.cwd = psutil_link(data);
  if (read_link(dir + "/exe", data))
    p.exe = psutil_link(data);
  auto maps = scan_maps(dir + "/maps");
  if (maps.java)
    p.runtime = app_runtime::java;
  else if (maps.python && blacklist_hit(p.cmdline).empty())
    p.runtime = app_runtime::python;
  else if (maps.ruby)
    p.runtime = app_runtime::ruby;
  else if (basename(p.exe) == "node"
           || (!p.cmdline.empty() && basename(p.cmdline[0]) == "node"))
    p.runtime = app_runtime::node;
  if (with_environ
      && read_proc_file(dir + "/environ", max_cmdline_bytes, data)) {
    size_t i = 0;
    while (i < data.size()) {
      auto j = data.find('\0', i);
      if (j == std::string::npos)
        j = data.size();
      if (j > i)
        p.environ.emplace_back(data.substr(i, j - i));
      i = j + 1;
    }
  }
  if (!path_exists(dir))
    return std::nullopt;
  return p;
}

std::string app_id_from(const process_facts& p, const app_id_options& o,
                        std::vector<std::string>* notes) {
  if (is_agent_process(p, o))
    return "";
  switch (p.runtime) {
    case app_runtime::python:
      if (!o.python)
        return "";
      return run_identifiers({[&] {
                                return gunicorn_title(p);
                              },
                              [&] {
                                return gunicorn(p);
                              },
                              [&] {
                                return uvicorn(p);
                              },
                              [&] {
                                return uwsgi(p, notes);
                              },
                              [&] {
                                return celery(p, notes);
                              },
                              [&] {
                                return pyspark(p);
                              },
                              [&] {
                                return python_module(p);
                              }},
                             false, notes);
    case app_runtime::java: {
      if (!o.java)
        return "";
      std::vector<identifier> ids = {[&] {
        return java_jar(p, o, notes);
      }};
      if (o.java_spark_app_name)
        ids.emplace_back([&] {
          return java_spark(p, notes);
        });
      return run_identifiers(ids, true, notes);
    }
    case app_runtime::ruby:
      if (!o.ruby)
        return "";
      return run_identifiers({[&] {
                               return ruby_module(p);
                             }},
                             false, notes);
    case app_runtime::node:
      return run_identifiers({[&] {
                               return node_module(p);
                             }},
                             false, notes);
    case app_runtime::none: break;
  }
  return "";
}

std::string app_id_of(int32_t pid, const app_id_options& o,
                      const std::string& proc_root) {
  auto facts = read_process_facts(pid, proc_root, !o.args_filter.empty());
  if (!facts)
    return "";
  return app_id_from(*facts, o);
}

// -- application metadata
// ------------------------------------------------------

namespace {

/// Thrown when the process turned out to be gone (psutil's NoSuchProcess /
/// ZombieProcess, which gProfiler lets through).
struct process_gone {};

std::string errno_class(int err) {
  switch (err) {
    case EACCES:
    case EPERM: return "PermissionError";
    case ENOENT: return "FileNotFoundError";
    default: return "OSError";
  }
}

std::string read_exe(const std::string& dir,
                     const std::vector<std::string>& cmdline) {
  std::string link;
  int err = 0;
  if (read_link(dir + "/exe", link)) {
    link = psutil_link(link);
    if (!link.empty())
      return link;
  } else {
    err = errno;
    if ((err == ENOENT || err == ESRCH) && !path_exists(dir))
      throw process_gone{};
  }
  // psutil guesses from an absolute argv[0] that is an executable file.
  if (!cmdline.empty() && starts_with(cmdline[0], "/")) {
    struct stat st;
    if (::stat(cmdline[0].c_str(), &st) == 0 && S_ISREG(st.st_mode)
        && ::access(cmdline[0].c_str(), X_OK) == 0)
      return cmdline[0];
  }
  if (err == EACCES || err == EPERM)
    return "error: AccessDenied";
  return "error: MissingExePath";
}

std::string read_execfn(const std::string& dir) {
  std::string auxv;
  if (!read_proc_file(dir + "/auxv", 8192, auxv)) {
    int err = errno;
    if (!path_exists(dir))
      throw process_gone{};
    return err == EACCES || err == EPERM ? "error: AccessDenied"
                                         : "error: " + errno_class(err);
  }
  if (auxv.empty())
    throw process_gone{}; // exited (zombie) or a kernel thread
  constexpr unsigned long at_execfn = 31;
  const size_t entry = 2 * sizeof(unsigned long);
  std::optional<unsigned long> addr;
  for (size_t i = 0; i + entry <= auxv.size(); i += entry) {
    unsigned long kv[2];
    std::memcpy(kv, auxv.data() + i, entry);
    if (kv[0] == at_execfn) {
      addr = kv[1];
      break;
    }
  }
  if (!addr)
    return "error: ValueError";
  int fd = ::open((dir + "/mem").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int err = errno;
    if (!path_exists(dir))
      throw process_gone{};
    return err == EACCES || err == EPERM ? "error: AccessDenied"
                                         : "error: " + errno_class(err);
  }
  fd_guard guard{fd};
  char buf[4096];
  ssize_t n;
  do
    n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(*addr));
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EACCES || errno == EPERM ? "error: AccessDenied"
                                             : "error: OSError";
  std::string_view fn{buf, static_cast<size_t>(n)};
  auto nul = fn.find('\0');
  if (nul == std::string_view::npos)
    return "error: ValueError";
  fn = fn.substr(0, nul);
  if (!format::is_valid_utf8(fn))
    return "error: UnicodeDecodeError";
  return std::string{fn};
}

std::string read_arch(const std::string& dir) {
  int fd = ::open((dir + "/exe").c_str(),
                  O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ESRCH)
      throw process_gone{};
    return "error: " + errno_class(err);
  }
  fd_guard guard{fd};
  unsigned char h[64];
  size_t got = 0;
  while (got < sizeof h) {
    ssize_t n = ::read(fd, h + got, sizeof h - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return "error: " + errno_class(errno);
    if (n == 0)
      break;
    got += static_cast<size_t>(n);
  }
  if (got < 4
      || std::memcmp(h,
                     "\x7f"
                     "ELF",
                     4)
             != 0)
    return "error: ELFError";
  if (got < 6 || (h[4] != 1 && h[4] != 2) || (h[5] != 1 && h[5] != 2))
    return "error: ELFError";
  if (got < (h[4] == 1 ? 52u : 64u))
    return "error: ELFParseError";
  unsigned machine
      = h[5] == 1 ? (h[18] | (h[19] << 8)) : ((h[18] << 8) | h[19]);
  switch (machine) {
    case 62: return "x86_64";
    case 183: return "aarch64";
    default: return "error: KeyError";
  }
}

/// The Node.js version compiled into a node executable: the inspector's
/// "Browser" field, "node.js/v20.20.2", is in every build with an inspector
/// (what `node --version` prints, which gProfiler runs instead). Read once
/// per executable file (device, inode, size, mtime), at most 512 MiB of it.
std::string node_version_of(const std::string& exe_path) {
  static std::mutex mutex;
  static std::map<std::tuple<dev_t, ino_t, off_t, time_t>, std::string> cache;
  int fd
      = ::open(exe_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return "error: " + errno_class(errno);
  fd_guard guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return "error: not a regular file";
  auto key = std::make_tuple(st.st_dev, st.st_ino, st.st_size, st.st_mtime);
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto i = cache.find(key); i != cache.end())
      return i->second;
  }
  static constexpr std::string_view marker = "node.js/v";
  std::string result = "error: no version in the executable";
  std::string buf;
  std::vector<char> chunk(1 << 20);
  uint64_t total = 0;
  while (total < (512ULL << 20)) {
    ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    total += static_cast<uint64_t>(n);
    // Keep the tail of the last chunk: the marker may straddle two.
    if (buf.size() > 64)
      buf.erase(0, buf.size() - 64);
    buf.append(chunk.data(), static_cast<size_t>(n));
    auto at = buf.find(marker);
    if (at == std::string::npos)
      continue;
    auto v = at + marker.size();
    auto end = v;
    while (end < buf.size() && end - v < 24
           && (std::isdigit(static_cast<unsigned char>(buf[end]))
               || buf[end] == '.'))
      ++end;
    if (end == buf.size() && end - v < 24)
      continue; // cut by the chunk: the next read completes it
    if (end > v && std::isdigit(static_cast<unsigned char>(buf[v]))) {
      result = "v" + buf.substr(v, end - v);
      break;
    }
    buf.erase(0, at + marker.size());
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= 64)
    cache.clear();
  cache.emplace(key, result);
  return result;
}

/// Whether an ELF executable has a PT_DYNAMIC segment (granulate_utils'
/// is_statically_linked, negated); nullopt if it cannot be read as ELF.
std::optional<bool> elf_dynamic(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return std::nullopt;
  fd_guard guard{fd};
  unsigned char h[64];
  if (::pread(fd, h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)
      || std::memcmp(h,
                     "\x7f"
                     "ELF",
                     4)
             != 0
      || h[4] != 2 || h[5] != 1)
    return std::nullopt; // 64-bit little-endian only (x86_64, aarch64)
  auto u16 = [&](size_t at) {
    return static_cast<uint64_t>(h[at] | (h[at + 1] << 8));
  };
  uint64_t phoff = 0;
  for (int i = 7; i >= 0; --i)
    phoff = (phoff << 8) | h[32 + i];
  auto phentsize = u16(54);
  auto phnum = u16(56);
  if (phentsize < 56 || phnum == 0 || phnum > 4096)
    return std::nullopt;
  for (uint64_t i = 0; i < phnum; ++i) {
    unsigned char type[4];
    if (::pread(fd, type, sizeof type,
                static_cast<off_t>(phoff + i * phentsize))
        != 4)
      return std::nullopt;
    if ((type[0] | (type[1] << 8) | (type[2] << 16)
         | (static_cast<uint32_t>(type[3]) << 24))
        == 2) // PT_DYNAMIC
      return true;
  }
  return false;
}

} // namespace

std::string node_metadata_members(int32_t pid, const std::string& proc_root) {
  auto dir = proc_dir(proc_root, pid);
  std::string out = "\"node_version\":";
  json_string(out, node_version_of(dir + "/exe"));
  auto dynamic = elf_dynamic(dir + "/exe");
  out += ",\"link\":";
  bool is_static = dynamic && !*dynamic;
  out += is_static ? "\"static\"" : "\"dynamic\"";
  out += ",\"libc\":";
  if (is_static) {
    out += "null";
  } else {
    std::string maps;
    read_proc_file(dir + "/maps", 4 << 20, maps);
    out += maps.find("ld-musl") != std::string::npos ? "\"musl\"" : "\"glibc\"";
  }
  return out;
}

std::optional<application_metadata>
read_application_metadata(int32_t pid, const std::string& proc_root) {
  auto dir = proc_dir(proc_root, pid);
  if (!path_exists(dir))
    return std::nullopt;
  std::string data;
  std::vector<std::string> cmdline;
  if (read_proc_file(dir + "/cmdline", max_cmdline_bytes, data))
    cmdline = split_cmdline(data);
  try {
    application_metadata m;
    m.exe = read_exe(dir, cmdline);
    m.execfn = read_execfn(dir);
    m.arch = read_arch(dir);
    return m;
  } catch (const process_gone&) {
    return std::nullopt;
  }
}

std::string to_json(const application_metadata& m) {
  std::string out = "{\"exe\":";
  json_string(out, m.exe);
  out += ",\"execfn\":";
  json_string(out, m.execfn);
  out += ",\"arch\":";
  json_string(out, m.arch);
  out += '}';
  return out;
}

void append_python_json_string(std::string& out, std::string_view s) {
  json_string(out, s);
}

std::string application_metadata_json(int32_t pid,
                                      const std::string& proc_root) {
  auto m = read_application_metadata(pid, proc_root);
  return m ? to_json(*m) : std::string{};
}

bool records_application_metadata(app_runtime r, const app_id_options& o) {
  switch (r) {
    case app_runtime::python: return o.python;
    case app_runtime::java: return o.java;
    case app_runtime::ruby: return o.ruby;
    case app_runtime::node: return true;
    case app_runtime::none: break;
  }
  return false;
}

std::string application_metadata_of(int32_t pid, const app_id_options& o,
                                    const std::string& proc_root) {
  auto facts = read_process_facts(pid, proc_root);
  if (!facts || is_agent_process(*facts, o)
      || !records_application_metadata(facts->runtime, o))
    return "";
  auto base = application_metadata_json(pid, proc_root);
  if (facts->runtime != app_runtime::node || base.size() < 2)
    return base;
  // gProfiler's NodePerfMetadata: its members, then the common ones.
  return "{" + node_metadata_members(pid, proc_root) + "," + base.substr(1);
}

bool python_executable_name(std::string_view exe) {
  return is_python_bin(exe);
}

} // namespace gpa::rt
