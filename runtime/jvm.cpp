#include "runtime/jvm.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/uuid/detail/sha1.hpp>

#include "runtime/app_id.hpp"
#include "runtime/files.hpp"
#include "runtime/proc.hpp"

namespace gpa::rt {

namespace {

// -- text helpers
// ---------------------------------------------------------------

bool space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
         || c == '\f';
}

std::string_view strip(std::string_view s) {
  while (!s.empty() && space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && space(s.back()))
    s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

/// Splits on '\n' (a trailing '\r' dropped from each line).
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    auto nl = text.find('\n', i);
    auto line = text.substr(i, nl == std::string_view::npos ? nl : nl - i);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    out.push_back(line);
    if (nl == std::string_view::npos)
      break;
    i = nl + 1;
  }
  return out;
}

/// Digits only, at most 18 of them.
std::optional<uint64_t> number(std::string_view s) {
  if (s.empty() || s.size() > 18)
    return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

/// The leading digits of `s` ("" if none).
std::string_view leading_digits(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && n < 18 && s[n] >= '0' && s[n] <= '9')
    ++n;
  return s.substr(0, n);
}

// -- one line of VM.flags -all
// --------------------------------------------------------

/// The flag of `line` if a match starts at `at` (the first byte of a
/// token), as granulate_utils' pattern:
/// (\S+)\s+(\S+)\s+(:)?= (\S+)\s+{(.+?)}(?:\s*{(.*)})?
std::optional<jvm_flag> flag_at(std::string_view line, size_t at) {
  size_t i = at;
  auto token = [&](std::string_view& out) {
    size_t b = i;
    while (i < line.size() && !space(line[i]))
      ++i;
    out = line.substr(b, i - b);
    return i > b;
  };
  auto blanks = [&] {
    size_t b = i;
    while (i < line.size() && space(line[i]))
      ++i;
    return i > b;
  };
  std::string_view type, name, value;
  if (!token(type) || !blanks() || !token(name) || !blanks())
    return std::nullopt;
  bool colon = false;
  if (i < line.size() && line[i] == ':') {
    colon = true;
    ++i;
  }
  if (line.substr(i, 2) != "= ")
    return std::nullopt;
  i += 2;
  if (!token(value) || !blanks())
    return std::nullopt;
  if (i >= line.size() || line[i] != '{')
    return std::nullopt;
  // `.+?}`: at least one character, then the first '}' after it.
  auto close = line.find('}', i + 2);
  if (close == std::string_view::npos)
    return std::nullopt;
  auto kinds = line.substr(i + 1, close - i - 1);
  i = close + 1;
  std::optional<std::string_view> origin;
  size_t j = i;
  while (j < line.size() && space(line[j]))
    ++j;
  if (j < line.size() && line[j] == '{') {
    auto last = line.rfind('}');
    if (last != std::string_view::npos && last > j)
      origin = line.substr(j + 1, last - j - 1);
  }
  jvm_flag f;
  f.name = std::string{name};
  f.type = std::string{type};
  f.value = std::string{value};
  if (colon)
    f.origin = "non-default";
  else if (!origin)
    f.origin = "default";
  else
    f.origin = std::string{*origin};
  size_t k = 0;
  while (k < kinds.size()) {
    while (k < kinds.size() && space(kinds[k]))
      ++k;
    size_t b = k;
    while (k < kinds.size() && !space(kinds[k]))
      ++k;
    if (k > b)
      f.kind.emplace_back(kinds.substr(b, k - b));
  }
  std::sort(f.kind.begin(), f.kind.end());
  return f;
}

// -- files of a process
// ---------------------------------------------------------------

/// pread of exactly `n` bytes at `off`.
bool read_at(int fd, uint64_t off, void* buf, size_t n) {
  auto* p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, p + got, n - got, static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

std::string key_of(const struct stat& st) {
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":"
         + std::to_string(st.st_size) + ":" + std::to_string(st.st_ctim.tv_sec)
         + "." + std::to_string(st.st_ctim.tv_nsec);
}

/// The path of a maps line ("addr perms offset dev inode   path").
std::string_view maps_path(std::string_view line) {
  auto slash = line.find('/');
  return slash == std::string_view::npos ? std::string_view{}
                                         : line.substr(slash);
}

/// The first maps line whose path contains `part`: read in chunks up to that
/// line (at most 64 MiB; a line is cut at 8 KiB).
std::string first_mapping(const std::string& dir, std::string_view part) {
  int fd = ::open((dir + "/maps").c_str(),
                  O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
  if (fd < 0)
    return {};
  fd_guard g{fd};
  constexpr size_t max_line = 8 << 10;
  std::string buf(64 << 10, '\0');
  std::string line;
  size_t total = 0;
  while (total < (size_t{64} << 20)) {
    auto n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    total += static_cast<size_t>(n);
    std::string_view data(buf.data(), static_cast<size_t>(n));
    while (!data.empty()) {
      auto eol = data.find('\n');
      auto piece = data.substr(0, eol);
      if (line.size() < max_line)
        line.append(piece.substr(0, max_line - line.size()));
      if (eol == std::string_view::npos)
        break;
      if (maps_path(line).find(part) != std::string_view::npos)
        return line;
      line.clear();
      data.remove_prefix(eol + 1);
    }
  }
  return maps_path(line).find(part) != std::string_view::npos ? line
                                                              : std::string{};
}

/// A path made of `dir` and `rel`, "." and ".." resolved lexically (never
/// above "/").
std::string normalized(std::string_view dir, std::string_view rel) {
  std::vector<std::string_view> parts;
  auto add = [&parts](std::string_view p) {
    size_t i = 0;
    while (i <= p.size()) {
      auto s = p.find('/', i);
      auto c = p.substr(i, s == std::string_view::npos ? s : s - i);
      if (c == "..") {
        if (!parts.empty())
          parts.pop_back();
      } else if (!c.empty() && c != ".") {
        parts.push_back(c);
      }
      if (s == std::string_view::npos)
        break;
      i = s + 1;
    }
  };
  add(dir);
  add(rel);
  std::string out;
  for (auto p : parts) {
    out += '/';
    out.append(p);
  }
  return out.empty() ? "/" : out;
}

std::string_view base_name(std::string_view p) {
  auto s = p.rfind('/');
  return s == std::string_view::npos ? p : p.substr(s + 1);
}

constexpr char hex_digits[] = "0123456789abcdef";

std::string hex(const unsigned char* p, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += hex_digits[p[i] >> 4];
    out += hex_digits[p[i] & 0xf];
  }
  return out;
}

} // namespace

// -- JVM flags
// ---------------------------------------------------------------------

std::vector<jvm_flag> parse_jvm_flags(std::string_view text) {
  constexpr size_t max_line = 4096;
  constexpr size_t max_flags = 100000;
  std::vector<jvm_flag> out;
  for (auto line : lines_of(text)) {
    if (line.size() > max_line || out.size() >= max_flags)
      continue;
    // re.search: the leftmost token at which the pattern matches.
    for (size_t at = 0; at < line.size(); ++at) {
      if (space(line[at]) || (at > 0 && !space(line[at - 1])))
        continue;
      if (auto f = flag_at(line, at)) {
        out.push_back(std::move(*f));
        break;
      }
    }
  }
  return out;
}

jvm_flags_selection parse_jvm_flags_selection(std::string_view option) {
  jvm_flags_selection s;
  if (option.empty() || option == "none")
    s.what = jvm_flags_selection::mode::none;
  else if (option == "all")
    s.what = jvm_flags_selection::mode::all;
  else if (option == "default")
    s.what = jvm_flags_selection::mode::defaults;
  else {
    s.what = jvm_flags_selection::mode::list;
    size_t i = 0;
    while (true) {
      auto c = option.find(',', i);
      s.names.emplace_back(
          strip(option.substr(i, c == std::string_view::npos ? c : c - i)));
      if (c == std::string_view::npos)
        break;
      i = c + 1;
    }
  }
  return s;
}

std::vector<jvm_flag> select_jvm_flags(std::vector<jvm_flag> flags,
                                       const jvm_flags_selection& selection,
                                       std::vector<std::string>* missing) {
  using mode = jvm_flags_selection::mode;
  if (missing)
    missing->clear();
  if (selection.what == mode::none)
    return {};
  auto has_kind = [](const jvm_flag& f, std::string_view k) {
    return std::find(f.kind.begin(), f.kind.end(), k) != f.kind.end();
  };
  std::set<std::string> wanted(selection.names.begin(), selection.names.end());
  std::set<std::string> found;
  std::vector<jvm_flag> out;
  for (auto& f : flags) {
    if (f.type == "ccstr" || f.type == "ccstrlist" || has_kind(f, "manageable"))
      continue;
    if (selection.what == mode::defaults
        && (f.origin == "default" || has_kind(f, "notproduct")
            || has_kind(f, "pd") || has_kind(f, "develop")))
      continue;
    if (selection.what == mode::list) {
      if (!wanted.count(f.name))
        continue;
      found.insert(f.name);
    }
    out.push_back(std::move(f));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const jvm_flag& a, const jvm_flag& b) {
                     return a.name < b.name;
                   });
  if (missing && selection.what == mode::list)
    for (auto& n : wanted)
      if (!found.count(n))
        missing->push_back(n);
  return out;
}

std::string jvm_flags_json(const std::vector<jvm_flag>& flags) {
  std::string out = "[";
  for (size_t i = 0; i < flags.size(); ++i) {
    auto& f = flags[i];
    out += i ? ",{\"name\":" : "{\"name\":";
    append_python_json_string(out, f.name);
    out += ",\"type\":";
    append_python_json_string(out, f.type);
    out += ",\"value\":";
    append_python_json_string(out, f.value);
    out += ",\"origin\":";
    append_python_json_string(out, f.origin);
    out += ",\"kind\":[";
    for (size_t k = 0; k < f.kind.size(); ++k) {
      if (k)
        out += ',';
      append_python_json_string(out, f.kind[k]);
    }
    out += "]}";
  }
  out += ']';
  return out;
}

// -- the java executable and its version
// -------------------------------------------

std::optional<jvm_process> read_jvm_process(int32_t pid,
                                            const std::string& proc_root) {
  auto dir = proc_root + "/" + std::to_string(pid);
  jvm_process p;
  proc_stat st;
  if (!parse_proc_stat(read_small_file(dir + "/stat", 4096), st))
    return std::nullopt;
  p.start_time = st.start_time;
  p.nspid = pid;
  for (auto line : lines_of(read_small_file(dir + "/status", 64 << 10))) {
    auto field = [&](std::string_view name) -> std::vector<std::string_view> {
      std::vector<std::string_view> words;
      if (!starts_with(line, name))
        return words;
      auto rest = line.substr(name.size());
      size_t i = 0;
      while (i < rest.size()) {
        while (i < rest.size() && space(rest[i]))
          ++i;
        size_t b = i;
        while (i < rest.size() && !space(rest[i]))
          ++i;
        if (i > b)
          words.push_back(rest.substr(b, i - b));
      }
      return words;
    };
    // Uid/Gid: real, effective, saved, filesystem.
    if (auto w = field("Uid:"); w.size() >= 2) {
      if (auto v = number(w[1]))
        p.uid = static_cast<uint32_t>(*v);
    } else if (auto w = field("Gid:"); w.size() >= 2) {
      if (auto v = number(w[1]))
        p.gid = static_cast<uint32_t>(*v);
    } else if (auto w = field("NSpid:"); !w.empty()) {
      if (auto v = number(w.back()); v && *v > 0 && *v < (1u << 31))
        p.nspid = static_cast<int32_t>(*v);
    }
  }
  // gProfiler's is_java_basename: the exe's or argv[0]'s base name is
  // "java"; the exe link then runs the very binary of the process.
  char link[4096];
  auto n = ::readlink((dir + "/exe").c_str(), link, sizeof link);
  std::string exe = n > 0 ? std::string(link, static_cast<size_t>(n)) : "";
  if (ends_with(exe, " (deleted)"))
    exe.resize(exe.size() - 10);
  auto cmdline = read_small_file(dir + "/cmdline", 64 << 10);
  std::string_view argv0(cmdline.data(),
                         std::min(cmdline.find('\0'), cmdline.size()));
  struct stat sb;
  if ((!exe.empty() && base_name(exe) == "java")
      || base_name(argv0) == "java") {
    if (::stat((dir + "/exe").c_str(), &sb) == 0 && S_ISREG(sb.st_mode)) {
      p.java = "/proc/" + std::to_string(p.nspid) + "/exe";
      p.java_key = key_of(sb);
    }
    return p;
  }
  auto line = first_mapping(dir, "/libjvm.so");
  auto path = maps_path(line);
  if (path.empty())
    return p;
  auto libdir = path.substr(0, path.rfind('/'));
  for (auto rel : {"../../bin/java", "../../../bin/java"}) {
    auto candidate = normalized(libdir, rel);
    int fd = open_in_root(dir + "/root", candidate, O_PATH);
    if (fd < 0)
      continue;
    fd_guard g{fd};
    if (::fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)
        && (sb.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH))) {
      p.java = candidate;
      p.java_key = key_of(sb);
      break;
    }
  }
  return p;
}

std::string java_version_text(std::string_view stderr_text) {
  return std::string{strip(stderr_text)};
}

std::optional<jvm_version> parse_jvm_version(std::string_view text,
                                             std::string* why) {
  auto fail = [why](std::string reason) -> std::optional<jvm_version> {
    if (why)
      *why = std::move(reason);
    return std::nullopt;
  };
  auto all = lines_of(text);
  size_t first = 0;
  while (first < all.size()
         && all[first].find("openjdk version") == std::string_view::npos
         && all[first].find("java version") == std::string_view::npos)
    ++first;
  if (first == all.size())
    return fail("no 'openjdk version' or 'java version' line");
  std::vector<std::string_view> lines(all.begin() + first, all.end());
  // The version is the only quoted part of the first line.
  auto q1 = lines[0].find('"');
  auto q2 = q1 == std::string_view::npos ? q1 : lines[0].find('"', q1 + 1);
  if (q2 == std::string_view::npos
      || lines[0].find('"', q2 + 1) != std::string_view::npos)
    return fail("the version line does not quote one version");
  auto vstr = lines[0].substr(q1 + 1, q2 - q1 - 1);
  // (build X, ...) or (product build X) anywhere in the text.
  std::string_view build_str;
  for (size_t at = text.find('('); at != std::string_view::npos;
       at = text.find('(', at + 1)) {
    auto rest = text.substr(at + 1);
    if (starts_with(rest, "product "))
      rest.remove_prefix(8);
    if (!starts_with(rest, "build "))
      continue;
    rest.remove_prefix(6);
    auto end = rest.find_first_of(",)");
    if (end == std::string_view::npos || end == 0)
      continue;
    build_str = rest.substr(0, end);
    break;
  }
  if (build_str.empty())
    return fail("no '(build ...)' in the text");
  auto zing_suffix = [](std::string_view v) {
    auto at = v.rfind("-zing_");
    if (at == std::string_view::npos)
      return false;
    auto tail = v.substr(at + 6);
    return !tail.empty()
           && tail.find_first_not_of("0123456789.") == std::string_view::npos;
  };
  if (ends_with(vstr, "-internal") || ends_with(vstr, "-ea")
      || ends_with(vstr, "-ojdkbuild") || zing_suffix(vstr))
    vstr = vstr.substr(0, vstr.find('-'));
  std::vector<std::string_view> parts;
  for (size_t i = 0;;) {
    auto d = vstr.find('.', i);
    parts.push_back(vstr.substr(i, d == std::string_view::npos ? d : d - i));
    if (d == std::string_view::npos)
      break;
    i = d + 1;
  }
  jvm_version v;
  if (parts[0] == "1") {
    // 1.<major>.0_<minor>-b<build>
    if (parts.size() != 3)
      return fail("old-style version '" + std::string{vstr}
                  + "' has no 3 parts");
    auto major = number(parts[1]);
    if (!major)
      return fail("bad major version in '" + std::string{vstr} + "'");
    v.version.push_back(*major);
    auto us = parts[2].rfind('_');
    if (us != std::string_view::npos) {
      auto minor = number(parts[2].substr(us + 1));
      if (!minor)
        return fail("bad update number in '" + std::string{vstr} + "'");
      v.version.push_back(*minor);
    } else if (parts[2] != "0") {
      return fail("unexpected minor in '" + std::string{vstr} + "'");
    }
    std::string_view tail;
    if (auto b = build_str.rfind("-b"); b != std::string_view::npos)
      tail = build_str.substr(b + 2);
    else if (auto o = build_str.find("-ojdkbuild-");
             o != std::string_view::npos
             && build_str.find("-ojdkbuild-", o + 1) == std::string_view::npos)
      tail = build_str.substr(o + 11);
    else
      return fail("no build number in '" + std::string{build_str} + "'");
    auto build = number(tail);
    if (!build)
      return fail("bad build number in '" + std::string{build_str} + "'");
    v.build = *build;
  } else {
    // <version>+<build>
    for (auto p : parts) {
      auto n = number(p);
      if (!n)
        return fail("bad version '" + std::string{vstr} + "'");
      v.version.push_back(*n);
    }
    auto plus = build_str.find('+');
    if (plus == std::string_view::npos)
      return fail("no '+' build number in '" + std::string{build_str} + "'");
    auto digits = leading_digits(build_str.substr(plus + 1));
    if (digits.empty())
      return fail("bad build number in '" + std::string{build_str} + "'");
    v.build = *number(digits);
  }
  // The VM's name: the third line up to " (...)(build" or " (build".
  if (lines.size() < 3)
    return fail("no VM line");
  auto vm = lines[2];
  size_t cut = std::string_view::npos;
  for (size_t at = vm.find(' '); at != std::string_view::npos;
       at = vm.find(' ', at + 1)) {
    auto rest = vm.substr(at + 1);
    // (?:\(.*\))? then \((?:product )?build
    auto try_build = [](std::string_view r) {
      if (!starts_with(r, "("))
        return false;
      r.remove_prefix(1);
      if (starts_with(r, "product "))
        r.remove_prefix(8);
      return starts_with(r, "build");
    };
    bool ok = try_build(rest);
    if (!ok && starts_with(rest, "(")) {
      for (auto close = rest.rfind(')'); close != std::string_view::npos;
           close
           = close == 0 ? std::string_view::npos : rest.rfind(')', close - 1))
        if (try_build(rest.substr(close + 1))) {
          ok = true;
          break;
        }
    }
    if (ok) {
      cut = at;
      break;
    }
  }
  if (cut == std::string_view::npos)
    return fail("no build description in the VM line");
  v.vm_name = std::string{vm.substr(0, cut)};
  if (starts_with(v.vm_name, "OpenJDK")
      || starts_with(v.vm_name, "Java HotSpot"))
    v.vm_type = "HotSpot";
  else if (starts_with(v.vm_name, "Zing"))
    v.vm_type = "Zing";
  else if (v.vm_name == "Eclipse OpenJ9 VM")
    v.vm_type = "OpenJ9";
  if (v.vm_type == "Zing") {
    auto three = [](std::string_view s) -> std::vector<uint64_t> {
      std::vector<uint64_t> out;
      for (int k = 0; k < 3; ++k) {
        auto d = leading_digits(s);
        if (d.empty())
          return {};
        out.push_back(*number(d));
        s.remove_prefix(d.size());
        if (s.empty() || s.front() != '.')
          return {};
        s.remove_prefix(1);
      }
      return out;
    };
    // "Zing 22.04.1.0+1", "Zing22.04..." in the name; else "zing_20.03.0.0".
    for (auto at = v.vm_name.find("Zing"); at != std::string::npos;
         at = v.vm_name.find("Zing", at + 1)) {
      std::string_view rest = std::string_view{v.vm_name}.substr(at + 4);
      if (starts_with(rest, " "))
        rest.remove_prefix(1);
      if (auto z = three(rest); !z.empty()) {
        v.zing_version = z;
        break;
      }
    }
    if (v.zing_version.empty())
      if (auto at = text.find("zing_"); at != std::string_view::npos)
        v.zing_version = three(text.substr(at + 5));
    if (v.zing_version.empty())
      return fail("no Zing version");
  }
  return v;
}

std::string jvm_unsupported_reason(const jvm_version& v) {
  auto major = v.version.empty() ? 0 : v.version[0];
  if (v.vm_type == "Zing") {
    auto& z = v.zing_version;
    bool ok = true;
    if (z.size() < 3 || z[0] < 20)
      ok = false;
    else if (z[0] == 20)
      ok = z[1] >= 10 || (z[1] == 8 && z[2] >= 101);
    if (!ok)
      return "unsupported Zing VM version";
  }
  if (v.vm_type == "HotSpot" && major <= 6)
    return "unsupported HotSpot version";
  return {};
}

// -- ELF ids
// ---------------------------------------------------------------------

std::optional<std::string> elf_id_of_fd(int fd) {
  unsigned char h[64];
  if (!read_at(fd, 0, h, 16)
      || std::memcmp(h,
                     "\x7f"
                     "ELF",
                     4)
             != 0)
    return std::nullopt;
  bool is64 = h[4] == 2;
  bool little = h[5] == 1;
  if ((h[4] != 1 && h[4] != 2) || (h[5] != 1 && h[5] != 2)
      || !read_at(fd, 0, h, is64 ? 64 : 52))
    return std::nullopt;
  auto u = [little](const unsigned char* p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i)
      v |= uint64_t{p[little ? i : n - 1 - i]} << (8 * i);
    return v;
  };
  uint64_t shoff = is64 ? u(h + 0x28, 8) : u(h + 0x20, 4);
  uint64_t shentsize = is64 ? u(h + 0x3a, 2) : u(h + 0x2e, 2);
  uint64_t shnum = is64 ? u(h + 0x3c, 2) : u(h + 0x30, 2);
  uint64_t shstrndx = is64 ? u(h + 0x3e, 2) : u(h + 0x32, 2);
  std::optional<std::string> build_id;
  if (shoff != 0 && shnum > 0 && shnum <= 8192 && shstrndx < shnum
      && shentsize >= (is64 ? 64u : 40u) && shentsize <= 256) {
    std::vector<unsigned char> sh(shnum * shentsize);
    if (read_at(fd, shoff, sh.data(), sh.size())) {
      struct section {
        uint64_t name, type, offset, size;
      };
      auto sec = [&](uint64_t i) {
        auto* p = sh.data() + i * shentsize;
        section s;
        s.name = u(p, 4);
        s.type = u(p + 4, 4);
        s.offset = is64 ? u(p + 0x18, 8) : u(p + 0x10, 4);
        s.size = is64 ? u(p + 0x20, 8) : u(p + 0x14, 4);
        return s;
      };
      auto strtab = sec(shstrndx);
      std::string names;
      if (strtab.size > 0 && strtab.size <= (1u << 20)) {
        names.resize(strtab.size);
        if (!read_at(fd, strtab.offset, names.data(), names.size()))
          names.clear();
      }
      // pyelftools' get_section_by_name: the first section of that name,
      // which must be a note section.
      for (uint64_t i = 0; i < shnum && !names.empty(); ++i) {
        auto s = sec(i);
        if (s.name >= names.size()
            || std::strcmp(names.c_str() + s.name, ".note.gnu.build-id") != 0)
          continue;
        if (s.type != 7 /* SHT_NOTE */ || s.size > (64u << 10))
          break;
        std::vector<unsigned char> note(s.size);
        if (!read_at(fd, s.offset, note.data(), note.size()))
          break;
        size_t at = 0;
        auto align4 = [](uint64_t x) {
          return (x + 3) & ~uint64_t{3};
        };
        while (at + 12 <= note.size()) {
          auto namesz = u(note.data() + at, 4);
          auto descsz = u(note.data() + at + 4, 4);
          auto type = u(note.data() + at + 8, 4);
          auto name_at = at + 12;
          auto desc_at = name_at + align4(namesz);
          if (namesz > note.size() || descsz > note.size()
              || desc_at + descsz > note.size())
            break;
          if (type == 3 && namesz == 4
              && std::memcmp(note.data() + name_at, "GNU\0", 4) == 0) {
            build_id = hex(note.data() + desc_at, descsz);
            break;
          }
          at = desc_at + align4(descsz);
        }
        break;
      }
    }
  }
  if (build_id)
    return "buildid:" + *build_id;
  // No build id: the SHA-1 of the whole file.
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
      || st.st_size > (int64_t{1} << 30))
    return std::nullopt;
  boost::uuids::detail::sha1 sha;
  std::vector<char> buf(1 << 16);
  uint64_t off = 0;
  while (true) {
    ssize_t r = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return std::nullopt;
    if (r == 0)
      break;
    sha.process_bytes(buf.data(), static_cast<size_t>(r));
    off += static_cast<uint64_t>(r);
    if (off > (uint64_t{1} << 30))
      return std::nullopt;
  }
  boost::uuids::detail::sha1::digest_type digest;
  sha.get_digest(digest);
  unsigned char bytes[20];
  for (int i = 0; i < 5; ++i)
    for (int k = 0; k < 4; ++k)
      bytes[i * 4 + k] = static_cast<unsigned char>(digest[i] >> (24 - 8 * k));
  return "sha1:" + hex(bytes, sizeof bytes);
}

std::optional<std::string> mapped_elf_id(int32_t pid, std::string_view dso_part,
                                         const std::string& proc_root) {
  auto dir = proc_root + "/" + std::to_string(pid);
  auto line = first_mapping(dir, dso_part);
  if (line.empty())
    return std::nullopt;
  // The very file mapped (even if deleted or replaced since), root only.
  auto range = std::string{line.substr(0, line.find(' '))};
  int fd = ::open((dir + "/map_files/" + range).c_str(),
                  O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    std::string path{maps_path(line)};
    if (ends_with(path, " (deleted)"))
      return std::nullopt;
    fd = open_in_root(dir + "/root", path, O_RDONLY | O_NONBLOCK);
  }
  if (fd < 0)
    return std::nullopt;
  fd_guard g{fd};
  return elf_id_of_fd(fd);
}

// -- async-profiler
// ---------------------------------------------------------------------

bool perf_events_usable() {
  struct perf_event_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  long fd
      = ::syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0)
    return false;
  ::close(static_cast<int>(fd));
  return true;
}

// -- the application metadata
// -----------------------------------------------------------

std::string java_metadata_fields(std::string_view java_version,
                                 const std::optional<std::string>& libjvm_elfid,
                                 std::string_view jvm_flags) {
  std::string out = "\"java_version\":";
  append_python_json_string(out, java_version);
  out += ",\"libjvm_elfid\":";
  if (libjvm_elfid)
    append_python_json_string(out, *libjvm_elfid);
  else
    out += "null";
  out += ",\"jvm_flags\":";
  out.append(jvm_flags);
  return out;
}

} // namespace gpa::rt
