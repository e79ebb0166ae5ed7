#include "runtime/python_packages.hpp"
#include "runtime/files.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gpa::rt {

namespace {

/// The longest file name looked up or indexed (PATH_MAX).
constexpr size_t max_path = 4096;
/// The longest package name and version kept.
constexpr size_t max_name = 200;
constexpr size_t max_version = 128;

bool digit(int c) {
  return c >= '0' && c <= '9';
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size()
         && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool iends_with(std::string_view s, std::string_view tail) {
  if (s.size() < tail.size())
    return false;
  auto t = s.substr(s.size() - tail.size());
  for (size_t i = 0; i < t.size(); ++i)
    if (lower(t[i]) != tail[i])
      return false;
  return true;
}

/// Python's str.isspace for the ASCII range.
bool py_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

std::string_view py_strip(std::string_view s) {
  while (!s.empty() && py_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && py_space(s.back()))
    s.remove_suffix(1);
  return s;
}

/// A name or version that can go into a frame: printable ASCII without the
/// ';' that separates frames, of a sane length.
bool sane_label(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max)
    return false;
  for (char c : s)
    if (c < 0x20 || c > 0x7e || c == ';')
      return false;
  return true;
}

/// The next line of `text` from `pos` as str.splitlines() cuts lines (the
/// ASCII separators and U+0085, U+2028, U+2029 in UTF-8): sets `line` and
/// returns the position after its separator.
size_t next_line(std::string_view text, size_t pos, std::string_view& line) {
  size_t i = pos;
  for (; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t sep = 0;
    if (c == '\r')
      sep = i + 1 < text.size() && text[i + 1] == '\n' ? 2 : 1;
    else if (c == '\n' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e))
      sep = 1;
    else if (c == 0xc2 && i + 1 < text.size()
             && static_cast<unsigned char>(text[i + 1]) == 0x85)
      sep = 2;
    else if (c == 0xe2 && i + 2 < text.size()
             && static_cast<unsigned char>(text[i + 1]) == 0x80
             && (static_cast<unsigned char>(text[i + 2]) == 0xa8
                 || static_cast<unsigned char>(text[i + 2]) == 0xa9))
      sep = 3;
    if (sep != 0) {
      line = text.substr(pos, i - pos);
      return i + sep;
    }
  }
  line = text.substr(pos);
  return text.size();
}

/// The parts of pathlib.PurePosixPath(p): the root ("/", or "//" for
/// exactly two leading slashes; "" when relative) and the names, without
/// empty and "." ones.
std::string_view path_parts(std::string_view p,
                            std::vector<std::string_view>& parts) {
  std::string_view root;
  size_t slashes = 0;
  while (slashes < p.size() && p[slashes] == '/')
    ++slashes;
  if (slashes == 2)
    root = "//";
  else if (slashes > 0)
    root = "/";
  size_t i = slashes;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos)
      j = p.size();
    auto part = p.substr(i, j - i);
    if (!part.empty() && part != ".")
      parts.push_back(part);
    i = j + 1;
  }
  return root;
}

std::string join_parts(std::string_view root,
                       const std::vector<std::string_view>& parts) {
  std::string out{root};
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0)
      out += '/';
    out += parts[i];
  }
  if (out.empty())
    out = ".";
  return out;
}

/// A digit string as Python's str(int(s)) writes it.
std::string_view strip_zeros(std::string_view digits) {
  while (digits.size() > 1 && digits.front() == '0')
    digits.remove_prefix(1);
  return digits;
}

/// packaging.version.Version(v) as str(), or nullopt if `v` is not a PEP
/// 440 version (the rules of packaging's VERSION_PATTERN, matched
/// case-insensitively between optional white space).
std::optional<std::string> pep440(std::string_view v) {
  v = py_strip(v);
  size_t i = 0;
  const size_t e = v.size();
  auto at = [&](size_t k) {
    return k < e ? v[k] : '\0';
  };
  auto sep = [&](size_t k) {
    return at(k) == '-' || at(k) == '_' || at(k) == '.';
  };
  auto word_at = [&](size_t k, std::string_view w) {
    if (e - std::min(k, e) < w.size())
      return false;
    for (size_t n = 0; n < w.size(); ++n)
      if (lower(v[k + n]) != w[n])
        return false;
    return true;
  };
  auto digits_at = [&](size_t k) {
    size_t j = k;
    while (j < e && digit(v[j]))
      ++j;
    return j - k;
  };
  // An optional separator and an optional number after a pre, post or dev
  // label ("0" when there is none). Taking the separator even without a
  // number never loses a match: the next part may start without one.
  auto number_after = [&](size_t& k) {
    if (sep(k))
      ++k;
    if (size_t n = digits_at(k); n > 0) {
      k += n;
      return std::string{strip_zeros(v.substr(k - n, n))};
    }
    return std::string{"0"};
  };
  if (at(i) == 'v' || at(i) == 'V')
    ++i;
  std::string out;
  if (size_t n = digits_at(i); n > 0 && at(i + n) == '!') {
    auto epoch = strip_zeros(v.substr(i, n));
    if (epoch != "0") {
      out += epoch;
      out += '!';
    }
    i += n + 1;
  }
  size_t n = digits_at(i);
  if (n == 0)
    return std::nullopt;
  out += strip_zeros(v.substr(i, n));
  i += n;
  while (at(i) == '.' && digit(at(i + 1))) {
    n = digits_at(i + 1);
    out += '.';
    out += strip_zeros(v.substr(i + 1, n));
    i += 1 + n;
  }
  // Pre-release: the labels in the pattern's order (a longer one first
  // where one is a prefix of another).
  static constexpr std::pair<std::string_view, std::string_view> pre[]
      = {{"alpha", "a"},    {"a", "a"},    {"beta", "b"}, {"b", "b"},
         {"preview", "rc"}, {"pre", "rc"}, {"c", "rc"},   {"rc", "rc"}};
  {
    size_t k = sep(i) ? i + 1 : i;
    for (auto& [word, norm] : pre) {
      if (word_at(k, word)) {
        k += word.size();
        out += norm;
        out += number_after(k);
        i = k;
        break;
      }
    }
  }
  // Post-release: "-N", or a label with an optional number.
  if (at(i) == '-' && digit(at(i + 1))) {
    n = digits_at(i + 1);
    out += ".post";
    out += strip_zeros(v.substr(i + 1, n));
    i += 1 + n;
  } else {
    size_t k = sep(i) ? i + 1 : i;
    for (std::string_view word : {"post", "rev", "r"}) {
      if (word_at(k, word)) {
        k += word.size();
        out += ".post";
        out += number_after(k);
        i = k;
        break;
      }
    }
  }
  // Development release.
  {
    size_t k = sep(i) ? i + 1 : i;
    if (word_at(k, "dev")) {
      k += 3;
      out += ".dev";
      out += number_after(k);
      i = k;
    }
  }
  // Local version: alphanumeric parts, lowercased, numbers without leading
  // zeros, joined by '.'.
  if (at(i) == '+') {
    auto alnum = [&](size_t k) {
      size_t j = k;
      while (j < e
             && (digit(v[j]) || (lower(v[j]) >= 'a' && lower(v[j]) <= 'z')))
        ++j;
      return j - k;
    };
    size_t k = i + 1;
    n = alnum(k);
    if (n == 0)
      return std::nullopt;
    out += '+';
    while (true) {
      auto part = v.substr(k, n);
      if (digits_at(k) == n) {
        out += strip_zeros(part);
      } else {
        for (char c : part)
          out += lower(c);
      }
      k += n;
      if (!sep(k) || alnum(k + 1) == 0)
        break;
      out += '.';
      n = alnum(k + 1);
      k += 1;
    }
    i = k;
  }
  if (i != e)
    return std::nullopt;
  return out;
}

/// The value of the "Name" key of dict(email.parser.FeedParser(text)) as
/// gProfiler takes it (compat32 policy): present when a header is named
/// exactly "Name", and then the value of the first header named so in any
/// case. `any` tells whether there are headers at all.
std::optional<std::string> metadata_name(std::string_view text, bool& any) {
  any = false;
  bool exact = false;
  std::optional<std::string> first;
  // The lines of the header block, each with its line break.
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of("\r\n", pos);
    size_t next;
    if (end == std::string_view::npos)
      next = end = text.size();
    else if (text[end] == '\r' && end + 1 < text.size()
             && text[end + 1] == '\n')
      next = end + 2;
    else
      next = end + 1;
    auto body = text.substr(pos, end - pos);
    // headerRE: "From ", a field name and ':', or a continuation.
    bool header = body.rfind("From ", 0) == 0
                  || (!body.empty() && (body[0] == ' ' || body[0] == '\t'));
    if (!header) {
      size_t colon = body.find(':');
      header = colon != std::string_view::npos;
      for (size_t k = 0; header && k < colon; ++k)
        header = body[k] >= 0x21 && body[k] <= 0x7e;
    }
    if (!header)
      break;
    lines.push_back(text.substr(pos, next - pos));
    pos = next;
  }
  std::string_view name;
  std::string value;
  auto flush = [&] {
    if (name.empty())
      return;
    any = true;
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n'))
      value.pop_back();
    bool is_name = name.size() == 4;
    for (size_t k = 0; is_name && k < 4; ++k)
      is_name = lower(name[k]) == "name"[k];
    if (is_name && !first)
      first = value;
    if (name == "Name")
      exact = true;
    name = {};
    value.clear();
  };
  for (auto line : lines) {
    if (line[0] == ' ' || line[0] == '\t') {
      if (!name.empty())
        value += line;
      continue;
    }
    flush();
    // An mbox envelope line ("From ...") is no header wherever it is.
    if (line.rfind("From ", 0) == 0)
      continue;
    size_t colon = line.find(':');
    if (colon == 0)
      continue;
    name = line.substr(0, colon);
    auto rest = line.substr(colon + 1);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
      rest.remove_prefix(1);
    value = std::string{rest};
  }
  flush();
  if (!exact)
    return std::nullopt;
  return first;
}

/// pkg_resources' _version_from_file: the first stripped line starting
/// with "version:" in any case, its value as safe_version writes it;
/// nullopt when none or empty.
std::optional<std::string> metadata_version(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    std::string_view line;
    pos = next_line(text, pos, line);
    line = py_strip(line);
    if (line.size() < 8)
      continue;
    bool match = true;
    for (size_t k = 0; match && k < 8; ++k)
      match = lower(line[k]) == "version:"[k];
    if (!match)
      continue;
    auto v = python_safe_version(py_strip(line.substr(8)));
    if (v.empty())
      return std::nullopt;
    return v;
  }
  return std::nullopt;
}

/// The first fields of the rows of a RECORD, as csv.reader (the excel
/// dialect, not strict) reads them from text.splitlines(): a quoted field
/// may hold ',' and '""', and a quoted field (the first or a later one) that
/// a line break cuts goes on on the next line, without the break, so that
/// the row does too. An empty line is no row.
template <class F>
void record_first_fields(std::string_view text, F&& f) {
  enum class st { field_start, field, quoted, quote_in_quoted };
  size_t pos = 0;
  std::string first;
  while (pos < text.size()) {
    first.clear();
    size_t index = 0;
    st state = st::field_start;
    bool row = false;
    auto add = [&](char c) {
      if (index == 0)
        first += c;
    };
    do {
      std::string_view line;
      pos = next_line(text, pos, line);
      for (char c : line) {
        row = true;
        switch (state) {
          case st::field_start:
            if (c == '"') {
              state = st::quoted;
            } else if (c == ',') {
              ++index;
            } else {
              add(c);
              state = st::field;
            }
            break;
          case st::field:
            if (c == ',') {
              ++index;
              state = st::field_start;
            } else {
              add(c);
            }
            break;
          case st::quoted:
            if (c == '"')
              state = st::quote_in_quoted;
            else
              add(c);
            break;
          case st::quote_in_quoted:
            if (c == '"') {
              add(c);
              state = st::quoted;
            } else if (c == ',') {
              ++index;
              state = st::field_start;
            } else {
              add(c);
              state = st::field;
            }
            break;
        }
      }
    } while (state == st::quoted && pos < text.size());
    if (row)
      f(std::string_view{first});
  }
}

/// How a bounded read of a metadata file went.
enum class read_result { ok, missing, failed };

/// Reads the regular file `path` under `root` into `out`: at most `limit`
/// bytes, or (`cut` false) failed when it is larger.
read_result read_in_root(const std::string& root, const std::string& path,
                         uint64_t limit, bool cut, std::string& out) {
  out.clear();
  int fd = open_in_root(root, path, O_RDONLY | O_NONBLOCK);
  if (fd < 0)
    return errno == ENOENT || errno == ENOTDIR ? read_result::missing
                                               : read_result::failed;
  fd_guard guard{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return read_result::failed;
  if (!cut && static_cast<uint64_t>(st.st_size) > limit)
    return read_result::failed;
  // One byte more than wanted tells a file that grew past the limit.
  size_t want = static_cast<size_t>(
      std::min<uint64_t>(limit, static_cast<uint64_t>(st.st_size)) + 1);
  out.resize(want);
  size_t got = 0;
  while (got < want) {
    ssize_t r = ::read(fd, out.data() + got, want - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return read_result::failed;
    if (r == 0)
      break;
    got += static_cast<size_t>(r);
  }
  if (got > limit) {
    if (!cut)
      return read_result::failed;
    got = static_cast<size_t>(limit);
  }
  out.resize(got);
  return read_result::ok;
}

int64_t now_ms() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

} // namespace

// -- gProfiler's rules
// ---------------------------------------------------------

bool python_stdlib_file(std::string_view file) {
  for (size_t i = file.find("/python"); i != std::string_view::npos;
       i = file.find("/python", i + 1)) {
    size_t j = i + 7;
    if (!(j + 2 < file.size() && digit(file[j]) && file[j + 1] == '.'
          && digit(file[j + 2])))
      continue;
    size_t k = j + 3, end;
    if (k + 1 < file.size() && digit(file[k]) && file[k + 1] == '/')
      end = k + 2;
    else if (k < file.size() && file[k] == '/')
      end = k + 1;
    else
      continue;
    // (?!.*(site|dist)-packages): '.' stops at a line break.
    auto rest = file.substr(end);
    rest = rest.substr(0, rest.find('\n'));
    if (rest.find("site-packages") == std::string_view::npos
        && rest.find("dist-packages") == std::string_view::npos)
      return true;
  }
  return false;
}

std::string_view python_packages_dir(std::string_view file) {
  if (file.empty() || file[0] != '/')
    return {};
  for (std::string_view sep : {"/site-packages/", "/dist-packages/"}) {
    size_t i = file.rfind(sep);
    if (i != std::string_view::npos)
      return file.substr(0, i + sep.size());
  }
  return {};
}

/// `text` with each run of characters other than ASCII letters, digits and
/// '.' replaced by one '-' (pkg_resources' safe_name and safe_version).
static std::string dash_runs(std::string_view text) {
  std::string out;
  bool run = false;
  for (char c : text) {
    bool keep = digit(c) || (lower(c) >= 'a' && lower(c) <= 'z') || c == '.';
    if (keep) {
      out += c;
      run = false;
    } else if (!run) {
      out += '-';
      run = true;
    }
  }
  return out;
}

std::string python_safe_version(std::string_view version) {
  if (auto v = pep440(version))
    return *v;
  std::string spaced{version};
  std::replace(spaced.begin(), spaced.end(), ' ', '.');
  return dash_runs(spaced);
}

std::string python_normalize_path(std::string_view p) {
  std::vector<std::string_view> parts;
  auto root = path_parts(p, parts);
  return join_parts(root, parts);
}

// -- the index of a packages directory ----------------------------------------

struct python_packages::dir_index {
  struct file {
    uint32_t offset = 0;
    uint32_t size = 0;
    uint32_t package = 0;
  };

  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  /// When it was read (ms since the epoch), and whether that was
  /// settle_ms after the directory's mtime.
  int64_t read_ms = 0;
  bool settled = true;
  uint64_t last_used = 0;
  std::vector<python_package> packages;
  /// The files' keys, one after the other: paths relative to the packages
  /// directory, or absolute ones (a RECORD may name those).
  std::string arena;
  /// Sorted by key, one per key.
  std::vector<file> files;

  std::string_view key(const file& f) const {
    return std::string_view{arena}.substr(f.offset, f.size);
  }

  /// The memory it holds, about.
  size_t bytes() const {
    return arena.size() + files.size() * sizeof(file) + package_bytes;
  }
  size_t package_bytes = 0;

  const python_package* find(std::string_view k) const {
    auto it = std::lower_bound(files.begin(), files.end(), k,
                               [this](const file& f, std::string_view x) {
                                 return key(f) < x;
                               });
    if (it == files.end() || key(*it) != k)
      return nullptr;
    return &packages[it->package];
  }
};

namespace {

/// What one distribution adds to an index.
struct dist_files {
  python_package package;
  std::vector<std::string> keys;
};

void add_key(std::string key, std::vector<std::string>& keys) {
  if (key.size() <= max_path && ends_with(key, ".py"))
    keys.push_back(std::move(key));
}

/// The RECORD's paths as keys: str(pathlib.Path(row[0])).
void record_keys(std::string_view text, std::vector<std::string>& keys) {
  record_first_fields(text, [&](std::string_view field) {
    // Only a field with ".py" in it can name a .py file once normalized.
    if (field.find(".py") != std::string_view::npos)
      add_key(python_normalize_path(field), keys);
  });
}

/// installed-files.txt's paths, relative to the egg-info directory `info`,
/// as keys relative to the packages directory (pip's
/// _convert_legacy_entry: each leading ".." takes a part off `info`, or adds
/// a ".." once `info` is empty).
void legacy_keys(std::string_view text, std::string_view info,
                 std::vector<std::string>& keys) {
  size_t pos = 0;
  std::vector<std::string_view> parts, base;
  while (pos < text.size()) {
    std::string_view line;
    pos = next_line(text, pos, line);
    if (line.empty())
      continue;
    parts.clear();
    auto root = path_parts(line, parts);
    if (!root.empty()) {
      add_key(join_parts(root, parts), keys);
      continue;
    }
    base.assign(1, info);
    size_t k = 0;
    for (; k < parts.size() && parts[k] == ".."; ++k) {
      if (base.empty() || base.back() == "..")
        base.push_back("..");
      else
        base.pop_back();
    }
    base.insert(base.end(), parts.begin() + static_cast<std::ptrdiff_t>(k),
                parts.end());
    add_key(join_parts({}, base), keys);
  }
}

/// The name and version in the stem of a distribution directory's name
/// ("pip-23.0.1" of "pip-23.0.1.dist-info") as pkg_resources' EGG_NAME
/// takes them; empty when absent.
void name_and_version(std::string_view stem, std::string_view& name,
                      std::string_view& version) {
  name = version = {};
  size_t dash = stem.find('-');
  if (dash == 0)
    return;
  name = stem.substr(0, dash);
  if (dash == std::string_view::npos)
    return;
  size_t end = stem.find('-', dash + 1);
  if (end == std::string_view::npos)
    end = stem.size();
  version = stem.substr(dash + 1, end - dash - 1);
}

/// pkg_resources' safe_name.
std::string safe_name(std::string_view name) {
  return dash_runs(name);
}

/// Reads distribution `entry` of packages directory `dir` (as the process
/// sees it, ending with '/'); false when it adds nothing.
bool read_dist(const std::string& root, const std::string& dir,
               const std::string& entry, bool dist_info,
               const python_packages_limits& limits, dist_files& out) {
  const std::string base = dir + entry + "/";
  std::string text;
  out.keys.clear();
  switch (
      read_in_root(root, base + "RECORD", limits.max_file_list, false, text)) {
    case read_result::ok: record_keys(text, out.keys); break;
    case read_result::failed: return false;
    case read_result::missing:
      if (read_in_root(root, base + "installed-files.txt", limits.max_file_list,
                       false, text)
          != read_result::ok)
        return false;
      legacy_keys(text, entry, out.keys);
      break;
  }
  if (out.keys.empty())
    return false;
  // The name from METADATA (a dist-info's) or PKG-INFO.
  bool metadata = false;
  if (dist_info) {
    auto r = read_in_root(root, base + "METADATA", limits.max_metadata, true,
                          text);
    if (r == read_result::failed)
      return false;
    metadata = r == read_result::ok;
  }
  if (!metadata
      && read_in_root(root, base + "PKG-INFO", limits.max_metadata, true, text)
             != read_result::ok)
    return false;
  auto stem
      = std::string_view{entry}.substr(0, entry.size() - (dist_info ? 10 : 9));
  std::string_view dir_name, dir_version;
  name_and_version(stem, dir_name, dir_version);
  bool any = false;
  auto name = metadata_name(text, any);
  if (!any)
    return false;
  if (!name)
    name = safe_name(dir_name.empty() ? "Unknown" : dir_name);
  // The version: an egg-info's PKG-INFO first, then the directory's name,
  // then a dist-info's METADATA.
  std::optional<std::string> version;
  if (!dist_info)
    version = metadata_version(text);
  if (!version && !dir_version.empty())
    version = python_safe_version(dir_version);
  if (!version && metadata)
    version = metadata_version(text);
  if (!version || !sane_label(*name, max_name)
      || !sane_label(*version, max_version))
    return false;
  out.package = python_package{std::move(*name), std::move(*version)};
  return true;
}

/// Reads the packages directory open as `fd` (`dir` as the process sees
/// it); an empty index when it is beyond the limits.
std::unique_ptr<python_packages::dir_index>
read_packages_dir(int fd, const std::string& root, const std::string& dir,
                  const python_packages_limits& limits) {
  auto index = std::make_unique<python_packages::dir_index>();
  std::vector<std::pair<std::string, bool>> entries;
  {
    int dfd = ::dup(fd);
    if (dfd < 0)
      return index;
    DIR* d = ::fdopendir(dfd);
    if (d == nullptr) {
      ::close(dfd);
      return index;
    }
    size_t seen = 0;
    bool too_many = false;
    while (auto* ent = ::readdir(d)) {
      std::string_view name{ent->d_name};
      if (name == "." || name == "..")
        continue;
      if (++seen > limits.max_entries) {
        too_many = true;
        break;
      }
      // A file named *.egg-info has no file list, and pkg_resources takes
      // a *.dist-info only when it is a directory.
      if (ent->d_type != DT_DIR && ent->d_type != DT_LNK
          && ent->d_type != DT_UNKNOWN)
        continue;
      bool dist_info = iends_with(name, ".dist-info");
      if (!dist_info && !iends_with(name, ".egg-info"))
        continue;
      // os.path.splitext gives no extension to ".dist-info" and the like.
      auto stem = name.substr(0, name.size() - (dist_info ? 10 : 9));
      if (stem.find_first_not_of('.') == std::string_view::npos)
        continue;
      entries.emplace_back(std::string{name}, dist_info);
      if (entries.size() > limits.max_dists) {
        too_many = true;
        break;
      }
    }
    ::closedir(d);
    if (too_many)
      return index;
  }
  std::sort(entries.begin(), entries.end());
  const size_t budget = std::min<size_t>(limits.max_index_bytes, UINT32_MAX);
  struct key_ref {
    uint32_t offset;
    uint32_t size;
    uint32_t package;
  };
  std::vector<key_ref> keys;
  dist_files dist;
  for (auto& [name, dist_info] : entries) {
    if (!read_dist(root, dir, name, dist_info, limits, dist))
      continue;
    auto package = static_cast<uint32_t>(index->packages.size());
    index->package_bytes += sizeof(python_package) + dist.package.name.size()
                            + dist.package.version.size();
    index->packages.push_back(std::move(dist.package));
    for (auto& k : dist.keys) {
      if (index->arena.size() + index->package_bytes + k.size()
              + (keys.size() + 1) * sizeof(python_packages::dir_index::file)
          > budget)
        return std::make_unique<python_packages::dir_index>();
      keys.push_back(key_ref{static_cast<uint32_t>(index->arena.size()),
                             static_cast<uint32_t>(k.size()), package});
      index->arena += k;
    }
  }
  // One entry per key: the last distribution that names it wins, as the
  // later dict.update() does in gProfiler.
  std::string_view arena{index->arena};
  auto key = [&](const key_ref& r) {
    return arena.substr(r.offset, r.size);
  };
  std::stable_sort(keys.begin(), keys.end(),
                   [&](const key_ref& x, const key_ref& y) {
                     return key(x) < key(y);
                   });
  index->files.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (i + 1 < keys.size() && key(keys[i + 1]) == key(keys[i]))
      continue;
    index->files.push_back(python_packages::dir_index::file{
        keys[i].offset, keys[i].size, keys[i].package});
  }
  return index;
}

} // namespace

// -- python_packages
// ------------------------------------------------------------

python_packages::python_packages(size_t max_dirs) {
  limits_.max_dirs = max_dirs;
}

python_packages::python_packages(const python_packages_limits& limits)
    : limits_(limits) {}

python_packages::~python_packages() = default;

void python_packages::make_room(size_t bytes) {
  while (!dirs_.empty()
         && (dirs_.size() >= limits_.max_dirs
             || cached_bytes_ + bytes > limits_.max_index_bytes)) {
    auto lru = dirs_.begin();
    for (auto it = dirs_.begin(); it != dirs_.end(); ++it)
      if (it->second->last_used < lru->second->last_used)
        lru = it;
    cached_bytes_ -= lru->second->bytes();
    dirs_.erase(lru);
  }
}

const python_packages::dir_index*
python_packages::index_of(const std::string& root, const std::string& dir) {
  int fd = open_in_root(root, dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return nullptr;
  fd_guard guard{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return nullptr;
  auto id = std::make_pair(static_cast<uint64_t>(st.st_dev),
                           static_cast<uint64_t>(st.st_ino));
  const int64_t now = now_ms();
  if (auto it = dirs_.find(id); it != dirs_.end()) {
    auto& d = *it->second;
    bool same = d.mtime_sec == st.st_mtim.tv_sec
                && d.mtime_nsec == st.st_mtim.tv_nsec;
    bool recheck = !d.settled && now - d.read_ms >= limits_.settle_ms;
    if (same && !recheck) {
      d.last_used = ++clock_;
      return &d;
    }
    cached_bytes_ -= d.bytes();
    dirs_.erase(it);
  }
  // The mtime is taken before the read: a change while it is read is seen
  // at the next lookup.
  auto index = read_packages_dir(fd, root, dir, limits_);
  ++dirs_read_;
  index->mtime_sec = st.st_mtim.tv_sec;
  index->mtime_nsec = st.st_mtim.tv_nsec;
  index->read_ms = now;
  int64_t mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000
                     + st.st_mtim.tv_nsec / 1000000;
  index->settled = now - mtime_ms >= limits_.settle_ms;
  index->last_used = ++clock_;
  make_room(index->bytes());
  if (limits_.max_dirs == 0)
    return nullptr;
  cached_bytes_ += index->bytes();
  auto& slot = dirs_[id];
  slot = std::move(index);
  return slot.get();
}

std::optional<python_package>
python_packages::lookup(const std::string& root, const std::string& file,
                        const std::string& python_version) {
  if (file.size() > max_path)
    return std::nullopt;
  if (ends_with(file, ".py")) {
    auto dir = python_packages_dir(file);
    if (!dir.empty()) {
      if (auto* index = index_of(root, std::string{dir})) {
        auto rel = std::string_view{file}.substr(dir.size());
        // A relative key is the path under the directory; an absolute one
        // (a RECORD may name one) the whole path.
        const python_package* p = nullptr;
        if (!rel.empty() && rel[0] != '/')
          p = index->find(rel);
        if (p == nullptr)
          p = index->find(file);
        if (p != nullptr)
          return *p;
      }
    }
  }
  if (!python_version.empty() && sane_label(python_version, max_version)
      && python_stdlib_file(file))
    return python_package{"standard-library", python_version};
  return std::nullopt;
}

// -- stacks
// ----------------------------------------------------------------------

std::string add_python_versions(
    std::string_view stack,
    const std::function<std::optional<python_package>(const std::string& file)>&
        lookup) {
  // A match runs from a '(' to the first ')' after it, and every '(' before
  // that ')' shares it: the match, if any, ends with ".py:DIGITS" right
  // before the ')', and starts at the first '(' at least five characters
  // before the ':' (a file name of at least one character and ".py").
  std::string out;
  size_t copied = 0, pos = 0;
  while (true) {
    size_t open = stack.find('(', pos);
    if (open == std::string_view::npos)
      break;
    size_t close = stack.find(')', open + 1);
    if (close == std::string_view::npos)
      break;
    pos = close + 1;
    size_t d = close;
    while (d > open + 1 && digit(stack[d - 1]))
      --d;
    if (d == close)
      continue;
    size_t colon = d - 1;
    if (stack[colon] != ':' || colon < open + 5
        || stack.substr(colon - 3, 3) != ".py")
      continue;
    auto p = lookup(std::string{stack.substr(open + 1, colon - open - 1)});
    if (!p)
      continue;
    out.append(stack.substr(copied, open - copied));
    out += '(';
    out.append(stack.substr(open + 1, close - open - 1));
    out += " [";
    out += p->name;
    out += "==";
    out += p->version;
    out += "])";
    copied = close + 1;
  }
  out.append(stack.substr(copied));
  return out;
}

// -- the version in a binary
// ------------------------------------------------------

namespace {

/// The length of a match of (?:2\.7|3\.(?:[5-9]|1[0-4]))\.\d\d?(?=\x00) at
/// `p` in `b` (0 if none; the caller checks the digit before it).
size_t version_at(const char* b, size_t n, size_t p) {
  auto at = [&](size_t k) {
    return k < n ? b[k] : '\x01';
  };
  size_t i = p;
  if (at(i) == '2' && at(i + 1) == '.' && at(i + 2) == '7') {
    i += 3;
  } else if (at(i) == '3' && at(i + 1) == '.') {
    if (at(i + 2) >= '5' && at(i + 2) <= '9')
      i += 3;
    else if (at(i + 2) == '1' && at(i + 3) >= '0' && at(i + 3) <= '4')
      i += 4;
    else
      return 0;
  } else {
    return 0;
  }
  if (at(i) != '.' || !digit(at(i + 1)))
    return 0;
  i += 2;
  if (digit(at(i)) && at(i + 1) == '\0')
    return i + 1 - p;
  if (at(i) == '\0')
    return i - p;
  return 0;
}

} // namespace

std::string python_version_in_binary(const std::string& root,
                                     const std::string& path) {
  constexpr uint64_t max_read = uint64_t{256} << 20;
  constexpr size_t chunk = size_t{1} << 20;
  // The longest match and the NUL after it.
  constexpr size_t window = 8;
  int fd = open_in_root(root, path, O_RDONLY | O_NONBLOCK);
  if (fd < 0)
    return {};
  fd_guard guard{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return {};
  // The bytes not yet tested, with the one before them first (the
  // look-behind): `next` indexes the next position to test.
  std::string buf;
  size_t next = 1;
  uint64_t total = 0;
  std::string found;
  bool eof = false;
  while (!eof) {
    size_t old = buf.size();
    size_t want
        = static_cast<size_t>(std::min<uint64_t>(chunk, max_read - total));
    buf.resize(old + want);
    ssize_t r;
    do
      r = ::read(fd, buf.data() + old, want);
    while (r < 0 && errno == EINTR);
    if (r < 0)
      return {};
    buf.resize(old + static_cast<size_t>(r));
    total += static_cast<uint64_t>(r);
    eof = r == 0 || total >= max_read;
    size_t n = buf.size();
    size_t stop = eof ? n : (n >= window ? n - window + 1 : 0);
    const char* b = buf.data();
    size_t p = next;
    for (; p < stop; ++p) {
      if ((b[p] != '2' && b[p] != '3') || digit(b[p - 1]))
        continue;
      size_t len = version_at(b, n, p);
      if (len == 0)
        continue;
      if (!found.empty() && std::string_view{b + p, len} != found)
        return {};
      found.assign(b + p, len);
      p += len - 1;
    }
    if (p < 1)
      p = 1;
    buf.erase(0, std::min(buf.size(), p - 1));
    next = 1;
  }
  return found;
}

} // namespace gpa::rt
