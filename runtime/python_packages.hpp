#pragma once

// The package and version of the Python files in a stack, as gProfiler adds
// them to Python frames (gprofiler/metadata/py_module_version.py and
// _add_versions_to_process_stacks in gprofiler/profilers/python.py):
// "leaf (/venv/lib/python3.11/site-packages/pip/x.py:12)" becomes
// "leaf (/venv/lib/python3.11/site-packages/pip/x.py:12 [pip==23.0.1])".
//
// - A file under a ".../site-packages/" or ".../dist-packages/" directory
//   (the last "/site-packages/", else the last "/dist-packages/") belongs to
//   the distribution installed in that directory whose file list names it:
//   each *.dist-info and *.egg-info directory there, in name order (a later
//   one wins a file named twice), with its RECORD (paths relative to the
//   packages directory) or else its installed-files.txt (paths relative to
//   the egg-info directory, converted as pip's _convert_legacy_entry does).
//   The name is the "Name:" header of METADATA (dist-info) or PKG-INFO, else
//   the directory's name; the version is the one in the directory's name
//   ("pip-23.0.1.dist-info"), else the "Version:" line of the metadata (an
//   egg-info's PKG-INFO version comes first), normalized as pkg_resources'
//   safe_version does (PEP 440). (*.egg directories and *.egg-link files,
//   which pkg_resources follows too, are not read: in practice they have no
//   file list that could name a module's path.)
// - Else a file under a "/pythonX.Y/" directory and not under a site- or
//   dist-packages directory is ("standard-library", the full Python version).
//
// Every file is read through the process's root directory (/proc/PID/root)
// with rt::open_in_root, so a process in a container gets its own packages
// and no symlink or ".." leads out of its root. Every read is bounded
// (python_packages_limits): a directory, file list or name beyond the limits
// is skipped, never a crash. Unlike gProfiler, a distribution whose metadata
// cannot be read or makes no sense (a name with a ';' or a newline in it) is
// left out alone rather than failing the whole lookup, and only the ".py"
// files of a distribution are kept (a stack names no other).
//
// What a packages directory holds is cached by the directory's identity as
// opened (st_dev, st_ino), so the processes that share a container image's
// or the host's directory read it once; an entry is read again when the
// directory's mtime changes (pip install and uninstall add and remove
// entries there), and once more a while after a read that came soon after
// such a change (pip may still have been writing the new RECORD then). A
// directory seen through several roots (a host directory mounted into
// containers) is read through the root of the first lookup that needed it:
// only a symlink inside it that leads out of it could tell the roots apart.
//
// One python_packages per owner; not thread-safe (one caller at a time).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpa::rt {

struct python_package {
  std::string name;
  std::string version;
};

inline bool operator==(const python_package& x, const python_package& y) {
  return x.name == y.name && x.version == y.version;
}

struct python_packages_limits {
  /// Packages directories cached; the least recently used goes first.
  size_t max_dirs = 128;
  /// Bytes of the .py files' paths (and 12 bytes per file) indexed over all
  /// cached directories: the least recently used directories go to make
  /// room, and a directory that needs more on its own is skipped.
  size_t max_index_bytes = size_t{64} << 20;
  /// Entries of one packages directory listed; with more it is skipped.
  size_t max_entries = 200000;
  /// Distributions (*.dist-info, *.egg-info) in one directory; with more it
  /// is skipped.
  size_t max_dists = 20000;
  /// Bytes of a RECORD or installed-files.txt; a larger one skips its
  /// distribution.
  uint64_t max_file_list = uint64_t{8} << 20;
  /// Bytes of METADATA or PKG-INFO read (the headers come first).
  uint64_t max_metadata = uint64_t{1} << 20;
  /// A directory read less than this after its mtime is read again this
  /// long after that read, once: files written into a new *.dist-info
  /// directory do not change the packages directory's mtime.
  int64_t settle_ms = 10000;
};

class python_packages {
public:
  explicit python_packages(size_t max_dirs = 128);
  explicit python_packages(const python_packages_limits& limits);
  ~python_packages();
  python_packages(const python_packages&) = delete;
  python_packages& operator=(const python_packages&) = delete;

  /// The package of module `file` (absolute path in the process) of a
  /// process whose root directory is `root` (e.g. "/proc/1234/root");
  /// `python_version` the full version ("3.11.2", "" if unknown: then
  /// stdlib files are unknown). nullopt if unknown. Each call opens the
  /// packages directory to check its identity and mtime: a caller that
  /// rewrites many stacks of one process keeps the answers per file for the
  /// batch (add_python_versions calls its lookup for every frame).
  std::optional<python_package> lookup(const std::string& root,
                                       const std::string& file,
                                       const std::string& python_version);

  /// Packages directories in the cache.
  size_t cached_dirs() const {
    return dirs_.size();
  }

  /// Times a packages directory was read (cache misses), for tests and
  /// metrics.
  uint64_t dirs_read() const {
    return dirs_read_;
  }

  struct dir_index;

private:
  const dir_index* index_of(const std::string& root, const std::string& dir);
  void make_room(size_t bytes);

  python_packages_limits limits_;
  /// (st_dev, st_ino) of a packages directory -> what it holds.
  std::map<std::pair<uint64_t, uint64_t>, std::unique_ptr<dir_index>> dirs_;
  size_t cached_bytes_ = 0;
  uint64_t clock_ = 0;
  uint64_t dirs_read_ = 0;
};

/// `stack` with gProfiler's versions added to its "(FILE.py:LINE)" parts:
/// each match of gProfiler's
/// r"\((?P<module_info>(?P<filename>[^\)]+?\.py):\d+)\)" whose filename
/// `lookup` knows becomes "(FILE.py:LINE [NAME==VERSION])"; the rest is left as
/// it is. Linear in the size of `stack`, whatever it holds. (Python's \d also
/// matches non-ASCII digits; this one does not.)
std::string add_python_versions(
    std::string_view stack,
    const std::function<std::optional<python_package>(const std::string& file)>&
        lookup);

/// The full Python version ("3.9.18") in the binary `path` (a libpython or
/// python executable, as the process sees it, opened under `root`; not a
/// /proc magic link such as /proc/PID/exe): the match of gProfiler's
/// _PY_VERSION_STRING_PATTERN
/// (rb"(?<=\D)(?:2\.7|3\.(?:[5-9]|1[0-3]))\.\d\d?(?=\x00)"), extended to
/// 3.14; "" when there is none, when two matches differ, or the file cannot
/// be read. Unlike gProfiler, the same version found more than once is
/// taken: an unstripped libpython (pyenv's) also holds its build directory
/// ".../Python-3.12.1" in its debug strings and its prefix
/// ".../versions/3.12.1" in .rodata, where PY_VERSION's "3.12.1" is merged
/// into the prefix's tail; gProfiler gets no version from it. Reads the
/// first 256 MiB at most, in chunks.
std::string python_version_in_binary(const std::string& root,
                                     const std::string& path);

// -- gProfiler's rules, for tests -------------------------------------------

/// Whether `file` is in Python's standard library by gProfiler's
/// r"/python\d\.\d\d?/(?!.*(site|dist)-packages)" (searched anywhere).
bool python_stdlib_file(std::string_view file);

/// The packages directory of `file` with its trailing '/'
/// ("/usr/lib/python3/dist-packages/"), "" if none or `file` is relative.
std::string_view python_packages_dir(std::string_view file);

/// pkg_resources' safe_version: the PEP 440 normal form of `version`
/// ("1.0-RC1" -> "1.0rc1"), else runs of characters other than letters,
/// digits and '.' as one '-' (spaces first becoming '.').
std::string python_safe_version(std::string_view version);

/// str(pathlib.PurePosixPath(p)): no empty or "." parts, "." for nothing.
std::string python_normalize_path(std::string_view p);

} // namespace gpa::rt
