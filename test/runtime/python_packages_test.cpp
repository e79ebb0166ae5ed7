// The package versions of Python frames (runtime/python_packages): synthetic
// packages directories under a temporary root (dist-info and egg-info
// distributions, gProfiler's name and version rules, files in no package,
// the standard library, limits, symlinks that point out of the root, the
// cache and its invalidation), the stack rewrite on several frames and on
// hostile text, and the Python version in a binary (unit suite
// python_packages). The real suite python_packages_real checks the pyenv and
// Debian interpreters that are installed, and compares everything with
// gProfiler's own way of computing it (pkg_resources, re, csv, pathlib in
// test/support/python_packages_oracle.py) on real and synthetic packages
// directories and on random stacks, paths and versions.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "format/json.hpp"
#include "runtime/process_env.hpp"
#include "runtime/python_packages.hpp"

using namespace gpa;
using gpa::rt::python_package;

namespace gpa::rt {

std::ostream& operator<<(std::ostream& out, const python_package& p) {
  return out << p.name << "==" << p.version;
}

std::ostream& operator<<(std::ostream& out,
                         const std::optional<python_package>& p) {
  if (!p)
    return out << "(unknown)";
  return out << *p;
}

} // namespace gpa::rt

namespace {

const std::string site = "/usr/lib/python3.11/site-packages/";

std::optional<python_package> pkg(std::string name, std::string version) {
  return python_package{std::move(name), std::move(version)};
}

const std::optional<python_package> unknown;

void make_dirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i)
    if (i == path.size() || path[i] == '/')
      ::mkdir(path.substr(0, i).c_str(), 0755);
}

std::string dir_of(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

void write_file(const std::string& path, std::string_view content) {
  make_dirs(dir_of(path));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  BOOST_REQUIRE(out.good());
}

/// Sets the modification time of `path` to `ago` seconds ago.
void set_mtime_ago(const std::string& path, int64_t ago) {
  struct timespec times[2];
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= ago;
  times[1] = times[0];
  BOOST_REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

/// A temporary directory that stands for a process's root.
struct fake_root {
  rt::private_temp_dir temp{"/tmp"};

  const std::string& path() const {
    return temp.path();
  }
  std::string host(const std::string& p) const {
    return temp.path() + p;
  }
  void file(const std::string& p, std::string_view content) const {
    write_file(host(p), content);
  }
  /// A dist-info directory in `dir` with a RECORD and a METADATA.
  void dist_info(const std::string& dir, const std::string& entry,
                 std::string_view record, std::string_view metadata) const {
    file(dir + entry + "/RECORD", record);
    file(dir + entry + "/METADATA", metadata);
  }
};

/// Writes `content` at `offset` of `path` (zeros before it), emptied first
/// unless `keep`.
void write_at(const std::string& path, uint64_t offset,
              std::string_view content, bool keep = false) {
  int fd
      = ::open(path.c_str(), O_WRONLY | O_CREAT | (keep ? 0 : O_TRUNC), 0644);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(
      ::pwrite(fd, content.data(), content.size(), static_cast<off_t>(offset))
      == static_cast<ssize_t>(content.size()));
  ::close(fd);
}

} // namespace

BOOST_AUTO_TEST_SUITE(python_packages)

// A dist-info's RECORD names the files of the package; the name comes from
// METADATA and the version from the directory's name.
BOOST_AUTO_TEST_CASE(dist_info_record) {
  fake_root r;
  r.dist_info(site, "foo-1.2.3.dist-info",
              "foo/__init__.py,sha256=abc,10\n"
              "foo/bar.py,sha256=def,20\r\n"
              "\"foo/with,comma.py\",sha256=x,1\n"
              "\"foo/\"\"quoted\"\".py\",,\n"
              "foo/./dotted//x.py,,\n"
              "foo/__pycache__/bar.cpython-311.pyc,,\n"
              "foo-1.2.3.dist-info/RECORD,,\n"
              "../../../bin/foo.py,sha256=y,5\n"
              // A later quoted field open at the line's end takes the next
              // line into its row.
              "foo/open.py,\"sha,\n"
              "foo/taken.py,,\n",
              "Metadata-Version: 2.1\nName: Foo-Pkg\nVersion: 9.9\n\n"
              "A description.\nName: not-a-header\n");
  rt::python_packages p;
  auto foo = pkg("Foo-Pkg", "1.2.3");
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/__init__.py", "3.11.2"),
                    foo);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/bar.py", ""), foo);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/with,comma.py", ""), foo);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/\"quoted\".py", ""), foo);
  // RECORD's paths are normalized (pathlib), the module's path is not.
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/dotted/x.py", ""), foo);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/./dotted//x.py", ""),
                    unknown);
  // A path outside the directory, as RECORD writes it, joined to it.
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "../../../bin/foo.py", ""), foo);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/open.py", ""), foo);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/taken.py", ""), unknown);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo/missing.py", "3.11.2"),
                    unknown);
  BOOST_CHECK_EQUAL(
      p.lookup(r.path(), site + "foo/__pycache__/bar.cpython-311.pyc", ""),
      unknown);
  BOOST_CHECK_EQUAL(p.cached_dirs(), 1u);
  BOOST_CHECK_EQUAL(p.dirs_read(), 1u);
}

// dist-packages works like site-packages; the last such directory of a path
// is its packages directory, site-packages before dist-packages.
BOOST_AUTO_TEST_CASE(packages_directories) {
  fake_root r;
  const std::string dist = "/usr/lib/python3/dist-packages/";
  r.dist_info(dist, "deb-0.5.dist-info", "deb/__init__.py,,\n", "Name: deb\n");
  rt::python_packages p;
  BOOST_CHECK_EQUAL(p.lookup(r.path(), dist + "deb/__init__.py", "3.11.2"),
                    pkg("deb", "0.5"));
  BOOST_CHECK_EQUAL(rt::python_packages_dir("/a/site-packages/b/c.py"),
                    "/a/site-packages/");
  BOOST_CHECK_EQUAL(
      rt::python_packages_dir("/a/site-packages/b/site-packages/c.py"),
      "/a/site-packages/b/site-packages/");
  BOOST_CHECK_EQUAL(
      rt::python_packages_dir("/a/site-packages/b/dist-packages/c.py"),
      "/a/site-packages/");
  BOOST_CHECK_EQUAL(
      rt::python_packages_dir("/a/dist-packages/b/dist-packages/c.py"),
      "/a/dist-packages/b/dist-packages/");
  BOOST_CHECK_EQUAL(rt::python_packages_dir("a/site-packages/c.py"), "");
  BOOST_CHECK_EQUAL(rt::python_packages_dir("/a/site-packages"), "");
  BOOST_CHECK_EQUAL(rt::python_packages_dir("/a/my-site-packages/c.py"), "");
}

// The name: METADATA's "Name" header (the first header named so in any case,
// if one is named exactly "Name"), else the directory's name; the version:
// the directory's name, else METADATA's Version line, as safe_version
// writes it. A distribution without headers, without a version or with a
// name that would break a frame adds nothing.
BOOST_AUTO_TEST_CASE(names_and_versions) {
  fake_root r;
  r.dist_info(site, "bar.dist-info", "bar.py,,\n",
              "Name: bar\nVersion: 2.0-RC1\n");
  r.dist_info(site, "my_pkg-0.1.dist-info", "my_pkg.py,,\n",
              "Metadata-Version: 2.1\nSummary: no name\n");
  r.dist_info(site, "lower-1.0.dist-info", "lower.py,,\n",
              "name: first\nName: second\n");
  r.dist_info(site, "onlylower-1.0.dist-info", "onlylower.py,,\n",
              "name: lowercase only\n");
  r.dist_info(site, "spaced-1.0_RC2.dist-info", "spaced.py,,\n",
              "Name:   Spaced Out \r\nVersion: 7\r\n");
  r.file(site + "pkginfo-2.0.dist-info/RECORD", "pkginfo.py,,\n");
  r.file(site + "pkginfo-2.0.dist-info/PKG-INFO", "Name: from-pkg-info\n");
  r.dist_info(site, "empty-1.0.dist-info", "empty.py,,\n", "");
  r.dist_info(site, "body-1.0.dist-info", "body.py,,\n",
              "\nName: in the body\n");
  r.dist_info(site, "semi-1.0.dist-info", "semi.py,,\n", "Name: a;b\n");
  r.dist_info(site, "folded-1.0.dist-info", "folded.py,,\n", "Name: a\n b\n");
  r.dist_info(site, "noversion.dist-info", "noversion.py,,\n",
              "Name: noversion\n");
  r.dist_info(site, "invalid-1.0+.dist-info", "invalid.py,,\n",
              "Name: invalid\n");
  rt::python_packages p;
  auto at = [&](const std::string& f) {
    return p.lookup(r.path(), site + f, "");
  };
  BOOST_CHECK_EQUAL(at("bar.py"), pkg("bar", "2.0rc1"));
  BOOST_CHECK_EQUAL(at("my_pkg.py"), pkg("my-pkg", "0.1"));
  BOOST_CHECK_EQUAL(at("lower.py"), pkg("first", "1.0"));
  BOOST_CHECK_EQUAL(at("onlylower.py"), pkg("onlylower", "1.0"));
  BOOST_CHECK_EQUAL(at("spaced.py"), pkg("Spaced Out ", "1.0rc2"));
  BOOST_CHECK_EQUAL(at("pkginfo.py"), pkg("from-pkg-info", "2.0"));
  BOOST_CHECK_EQUAL(at("empty.py"), unknown);
  BOOST_CHECK_EQUAL(at("body.py"), unknown);
  BOOST_CHECK_EQUAL(at("semi.py"), unknown);
  BOOST_CHECK_EQUAL(at("folded.py"), unknown);
  BOOST_CHECK_EQUAL(at("noversion.py"), unknown);
  BOOST_CHECK_EQUAL(at("invalid.py"), pkg("invalid", "1.0-"));
}

// An egg-info's installed-files.txt names files relative to the egg-info
// directory; its PKG-INFO's version comes before the directory's.
BOOST_AUTO_TEST_CASE(egg_info_installed_files) {
  fake_root r;
  r.file(site + "baz-0.8-py3.11.egg-info/installed-files.txt",
         "../baz/__init__.py\n"
         "../baz/sub/mod.py\n"
         "PKG-INFO\n"
         "../../../../bin/baz\n"
         "\n"
         "./../baz/dot.py\n"
         "../../../../bin/tool.py\n"
         "inside.py\n"
         "/usr/lib/python3.11/site-packages/baz/abs.py\n");
  r.file(site + "baz-0.8-py3.11.egg-info/PKG-INFO",
         "Metadata-Version: 1.1\nName: baz\nVersion: 0.9.post1\n");
  r.file(site + "qux-3.1-py3.11.egg-info/installed-files.txt", "../qux.py\n");
  r.file(site + "qux-3.1-py3.11.egg-info/PKG-INFO", "Name: qux\n");
  // An egg-info file (no file list) and an egg-info without PKG-INFO.
  r.file(site + "eggfile-1.0.egg-info", "Name: eggfile\n");
  r.file(site + "nopkginfo-1.0.egg-info/installed-files.txt",
         "../nopkginfo.py\n");
  rt::python_packages p;
  auto at = [&](const std::string& f) {
    return p.lookup(r.path(), f, "");
  };
  auto baz = pkg("baz", "0.9.post1");
  BOOST_CHECK_EQUAL(at(site + "baz/__init__.py"), baz);
  BOOST_CHECK_EQUAL(at(site + "baz/sub/mod.py"), baz);
  BOOST_CHECK_EQUAL(at(site + "baz/dot.py"), baz);
  BOOST_CHECK_EQUAL(at(site + "baz-0.8-py3.11.egg-info/inside.py"), baz);
  BOOST_CHECK_EQUAL(at(site + "../../../bin/tool.py"), baz);
  BOOST_CHECK_EQUAL(at(site + "baz/abs.py"), baz);
  BOOST_CHECK_EQUAL(at(site + "qux.py"), pkg("qux", "3.1"));
  BOOST_CHECK_EQUAL(at(site + "eggfile.py"), unknown);
  BOOST_CHECK_EQUAL(at(site + "nopkginfo.py"), unknown);
}

// A file named by two distributions belongs to the later one in name order
// (bytewise: capitals first).
BOOST_AUTO_TEST_CASE(later_distribution_wins) {
  fake_root r;
  r.dist_info(site, "aaa-1.0.dist-info", "shared.py,,\nfirst.py,,\n",
              "Name: aaa\n");
  r.dist_info(site, "zzz-2.0.dist-info", "shared.py,,\n", "Name: zzz\n");
  r.dist_info(site, "Zed-3.0.dist-info", "first.py,,\n", "Name: Zed\n");
  rt::python_packages p;
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "shared.py", ""),
                    pkg("zzz", "2.0"));
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "first.py", ""),
                    pkg("aaa", "1.0"));
}

// The standard library: under /pythonX.Y/ and not under site- or
// dist-packages after it, with the interpreter's version when it is known.
BOOST_AUTO_TEST_CASE(standard_library) {
  fake_root r;
  rt::python_packages p;
  auto std311 = pkg("standard-library", "3.11.2");
  BOOST_CHECK_EQUAL(p.lookup(r.path(), "/usr/lib/python3.11/os.py", "3.11.2"),
                    std311);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), "/usr/lib/python3.11/os.py", ""),
                    unknown);
  BOOST_CHECK_EQUAL(
      p.lookup(r.path(), "/usr/lib/python3.11/json/decoder.py", "3.11.2"),
      std311);
  // A file of no distribution in site-packages is not the stdlib's.
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "nothing.py", "3.11.2"), unknown);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), "/opt/app/main.py", "3.11.2"), unknown);
  BOOST_CHECK_EQUAL(
      p.lookup(r.path(), "<frozen importlib._bootstrap>", "3.11.2"), unknown);
  // gProfiler's pattern is searched anywhere, relative paths too.
  BOOST_CHECK_EQUAL(p.lookup(r.path(), "lib/python3.9/os.py", "3.9.18"),
                    pkg("standard-library", "3.9.18"));
  BOOST_CHECK(rt::python_stdlib_file("/usr/lib/python3.11/lib-dynload/x.py"));
  BOOST_CHECK(rt::python_stdlib_file("/usr/lib/python2.7/os.py"));
  BOOST_CHECK(rt::python_stdlib_file("/v/site-packages/a/python3.11/b.py"));
  BOOST_CHECK(rt::python_stdlib_file(
      "/usr/lib/python3.11/site-packages/x/python3.12/y.py"));
  BOOST_CHECK(
      !rt::python_stdlib_file("/usr/lib/python3.11/site-packages/os.py"));
  BOOST_CHECK(
      !rt::python_stdlib_file("/usr/lib/python3.11/x/dist-packages/os.py"));
  BOOST_CHECK(!rt::python_stdlib_file("/usr/lib/python3/os.py"));
  BOOST_CHECK(!rt::python_stdlib_file("/usr/lib/python3.111/os.py"));
  BOOST_CHECK(!rt::python_stdlib_file("/usr/lib/python3.11"));
  BOOST_CHECK(!rt::python_stdlib_file("/usr/lib/mypython3.11x/os.py"));
  // The look-ahead's '.' stops at a line break.
  BOOST_CHECK(rt::python_stdlib_file("/python3.11/a\nsite-packages/b.py"));
  // A version that would break a frame is not used.
  BOOST_CHECK_EQUAL(p.lookup(r.path(), "/usr/lib/python3.11/os.py", "3;1"),
                    unknown);
}

// pkg_resources' safe_version (the expected values are packaging 24.1's).
BOOST_AUTO_TEST_CASE(safe_version) {
  std::pair<const char*, const char*> cases[] = {
      {"1.0.0", "1.0.0"},
      {"01.02", "1.2"},
      {"1.0RC1", "1.0rc1"},
      {"1.0-1", "1.0.post1"},
      {"1.0.dev", "1.0.dev0"},
      {"v1.0", "1.0"},
      {"V1.0", "1.0"},
      {"1!2.0", "1!2.0"},
      {"0!1.0", "1.0"},
      {"1.0+Ubuntu-1", "1.0+ubuntu.1"},
      {"1.0+001", "1.0+1"},
      {"1.0a.1", "1.0a1"},
      {"1.0-alpha", "1.0a0"},
      {"2.0.0-beta.2", "2.0.0b2"},
      {"1.0.0_dev2", "1.0.0.dev2"},
      {"1.11.0.dev0_2329eae", "1.11.0.dev0-2329eae"},
      {"1.0 beta", "1.0.beta"},
      {" 1.0\t", "1.0"},
      {"1.0c1", "1.0rc1"},
      {"1.0pre2", "1.0rc2"},
      {"1.0preview", "1.0rc0"},
      {"1.0-r", "1.0.post0"},
      {"1.0rev3", "1.0.post3"},
      {"1.0.post", "1.0.post0"},
      {"1.0a-1", "1.0a1"},
      {"1.0-1-1", "1.0-1-1"},
      {"1.0+", "1.0-"},
      {"1.0+a..b", "1.0-a..b"},
      {"1.0+a.", "1.0-a."},
      {"1.0.", "1.0."},
      {"2.7.post1.dev3+abc.007", "2.7.post1.dev3+abc.7"},
      {"1.0prev", "1.0prev"},
      {"x", "x"},
      {"", ""},
      {"___", "-"},
      {"1.0_post_2", "1.0.post2"},
      {"1.0-post-2", "1.0.post2"},
      {"1.0alpha_1.post.dev", "1.0a1.post0.dev0"},
      {"1.0a1.dev", "1.0a1.dev0"},
      {"\xc3\xbf"
       "1.0",
       "-1.0"},
  };
  for (auto& [in, out] : cases) {
    BOOST_TEST_INFO("version '" << in << "'");
    BOOST_CHECK_EQUAL(rt::python_safe_version(in), out);
  }
}

BOOST_AUTO_TEST_CASE(normalize_path) {
  std::pair<const char*, const char*> cases[] = {
      {"a/b.py", "a/b.py"},
      {"a//b/./c.py", "a/b/c.py"},
      {"./a.py", "a.py"},
      {"a/", "a"},
      {"", "."},
      {".", "."},
      {"/", "/"},
      {"//a", "//a"},
      {"///a", "/a"},
      {"../a/../b", "../a/../b"},
      {"/./a/.", "/a"},
      {"a/.py", "a/.py"},
  };
  for (auto& [in, out] : cases) {
    BOOST_TEST_INFO("path '" << in << "'");
    BOOST_CHECK_EQUAL(rt::python_normalize_path(in), out);
  }
}

// A file list beyond the limit, one that is not a regular file (a FIFO is
// not waited on) and a directory beyond its limits are skipped; the rest is
// still found.
BOOST_AUTO_TEST_CASE(limits) {
  fake_root r;
  r.dist_info(site, "ok-1.0.dist-info", "ok.py,,\n", "Name: ok\n");
  r.file(site + "big-1.0.dist-info/METADATA", "Name: big\n");
  write_at(r.host(site + "big-1.0.dist-info/RECORD"), 0, "big.py,,\n");
  write_at(r.host(site + "big-1.0.dist-info/RECORD"), (uint64_t{8} << 20), "\n",
           true);
  r.file(site + "fifo-1.0.dist-info/METADATA", "Name: fifo\n");
  BOOST_REQUIRE(
      ::mkfifo(r.host(site + "fifo-1.0.dist-info/RECORD").c_str(), 0644) == 0);
  r.file(site + "dir-1.0.dist-info/METADATA", "Name: dir\n");
  make_dirs(r.host(site + "dir-1.0.dist-info/RECORD"));
  // A METADATA over the limit is read up to it: its headers come first.
  r.dist_info(site, "longmeta-1.0.dist-info", "longmeta.py,,\n",
              "Name: longmeta\n\n" + std::string(size_t{3} << 20, 'x'));
  {
    rt::python_packages p;
    auto started = std::chrono::steady_clock::now();
    BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "ok.py", ""), pkg("ok", "1.0"));
    BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "big.py", ""), unknown);
    BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "fifo.py", ""), unknown);
    BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "dir.py", ""), unknown);
    BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "longmeta.py", ""),
                      pkg("longmeta", "1.0"));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    BOOST_CHECK_LT(took.count(), 5000);
  }
  // With the big RECORD under the limit, it is read.
  {
    rt::python_packages_limits l;
    l.max_file_list = uint64_t{9} << 20;
    rt::python_packages p{l};
    BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "big.py", ""),
                      pkg("big", "1.0"));
  }
  // Too many distributions, entries or indexed bytes: the whole directory
  // is skipped (and cached so).
  auto skipped = [&](rt::python_packages_limits l) {
    rt::python_packages p{l};
    BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "ok.py", ""), unknown);
    BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "longmeta.py", ""), unknown);
    BOOST_CHECK_EQUAL(p.dirs_read(), 1u);
  };
  rt::python_packages_limits l;
  l.max_dists = 4;
  skipped(l);
  l = {};
  l.max_entries = 4;
  skipped(l);
  l = {};
  l.max_index_bytes = 40;
  skipped(l);
  // A file name longer than PATH_MAX is not looked up.
  rt::python_packages p;
  BOOST_CHECK_EQUAL(
      p.lookup(r.path(),
               "/usr/lib/python3.11/" + std::string(5000, 'a') + ".py",
               "3.11.2"),
      unknown);
}

// Files are read inside the process's root: a symlink (absolute or
// relative, to a distribution or to the packages directory) that points
// out of it is resolved inside it, never followed out; one that stays in
// it is followed.
BOOST_AUTO_TEST_CASE(symlinks_stay_in_root) {
  fake_root r, outside;
  outside.dist_info(site, "evil-6.6.dist-info", "evil.py,,\n", "Name: evil\n");
  r.dist_info(site, "foo-1.0.dist-info", "foo.py,,\n", "Name: foo\n");
  make_dirs(r.host(site));
  BOOST_REQUIRE(::symlink(outside.host(site + "evil-6.6.dist-info").c_str(),
                          r.host(site + "evil-6.6.dist-info").c_str())
                == 0);
  BOOST_REQUIRE(::symlink(("../../../../../../../../.." + outside.host(site)
                           + "evil-6.6.dist-info")
                              .c_str(),
                          r.host(site + "evil2-6.6.dist-info").c_str())
                == 0);
  const std::string srv = "/srv/lib/python3.11/site-packages";
  make_dirs(dir_of(r.host(srv)));
  BOOST_REQUIRE(::symlink(outside.host(site).c_str(), r.host(srv).c_str())
                == 0);
  // A symlink inside the root, absolute as the process sees it.
  const std::string venv = "/opt/venv/lib/python3.11/site-packages";
  make_dirs(dir_of(r.host(venv)));
  BOOST_REQUIRE(::symlink(site.c_str(), r.host(venv).c_str()) == 0);

  rt::python_packages p;
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "evil.py", ""), unknown);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), srv + "/evil.py", ""), unknown);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo.py", ""), pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(p.lookup(r.path(), venv + "/foo.py", ""),
                    pkg("foo", "1.0"));
  // The symlinked directory is the same directory: read once; the one out
  // of the root was not found.
  BOOST_CHECK_EQUAL(p.dirs_read(), 1u);
  BOOST_CHECK_EQUAL(p.cached_dirs(), 1u);
  // The links do lead to a valid distribution from the host's root (a new
  // cache: a directory's index is the one read first, through whichever
  // root that was).
  rt::python_packages host;
  BOOST_CHECK_EQUAL(host.lookup("/", r.host(site + "evil.py"), ""),
                    pkg("evil", "6.6"));
  BOOST_CHECK_EQUAL(host.lookup("/", r.host(srv + "/evil.py"), ""),
                    pkg("evil", "6.6"));
}

// A directory is read once, whatever path and root lead to it, and again
// after it changes (a distribution added or removed).
BOOST_AUTO_TEST_CASE(cache_and_invalidation) {
  fake_root r;
  r.dist_info(site, "foo-1.0.dist-info", "foo.py,,\n", "Name: foo\n");
  set_mtime_ago(r.host(site), 3600);
  rt::python_packages p;
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo.py", ""), pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo.py", ""), pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(p.lookup("/", r.host(site + "foo.py"), ""),
                    pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(p.lookup("/proc/self/root", r.host(site + "foo.py"), ""),
                    pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "new.py", ""), unknown);
  BOOST_CHECK_EQUAL(p.dirs_read(), 1u);
  BOOST_CHECK_EQUAL(p.cached_dirs(), 1u);
  // A change inside a distribution alone is not seen (the directory's
  // mtime stays)...
  r.file(site + "foo-1.0.dist-info/RECORD", "foo.py,,\nfoo2.py,,\n");
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo2.py", ""), unknown);
  BOOST_CHECK_EQUAL(p.dirs_read(), 1u);
  // ... a new distribution is.
  r.dist_info(site, "new-2.0.dist-info", "new.py,,\n", "Name: new\n");
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "new.py", ""), pkg("new", "2.0"));
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo2.py", ""),
                    pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(p.dirs_read(), 2u);
  // Removed.
  BOOST_REQUIRE(::rename(r.host(site + "new-2.0.dist-info").c_str(),
                         r.host("/new-2.0.dist-info").c_str())
                == 0);
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "new.py", ""), unknown);
  BOOST_CHECK_EQUAL(p.dirs_read(), 3u);
  BOOST_CHECK_EQUAL(p.cached_dirs(), 1u);
}

// A directory read soon after it changed is read once more settle_ms after:
// pip writes a new distribution's RECORD after creating its directory.
BOOST_AUTO_TEST_CASE(settling) {
  fake_root r;
  r.dist_info(site, "foo-1.0.dist-info", "foo.py,,\n", "Name: foo\n");
  rt::python_packages_limits l;
  l.settle_ms = 300;
  rt::python_packages p{l};
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo.py", ""), pkg("foo", "1.0"));
  r.file(site + "foo-1.0.dist-info/RECORD", "foo.py,,\nlate.py,,\n");
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "late.py", ""), unknown);
  BOOST_CHECK_EQUAL(p.dirs_read(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "late.py", ""),
                    pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(p.dirs_read(), 2u);
  // Settled now: not read again.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  BOOST_CHECK_EQUAL(p.lookup(r.path(), site + "foo.py", ""), pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(p.dirs_read(), 2u);
  // An old directory is settled at its first read.
  fake_root old;
  old.dist_info(site, "foo-1.0.dist-info", "foo.py,,\n", "Name: foo\n");
  set_mtime_ago(old.host(site), 3600);
  rt::python_packages q{l};
  BOOST_CHECK_EQUAL(q.lookup(old.path(), site + "foo.py", ""),
                    pkg("foo", "1.0"));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  BOOST_CHECK_EQUAL(q.lookup(old.path(), site + "foo.py", ""),
                    pkg("foo", "1.0"));
  BOOST_CHECK_EQUAL(q.dirs_read(), 1u);
}

// At most max_dirs directories are cached; the least recently used goes.
BOOST_AUTO_TEST_CASE(lru) {
  fake_root a, b, c;
  for (auto* r : {&a, &b, &c}) {
    r->dist_info(site, "foo-1.0.dist-info", "foo.py,,\n", "Name: foo\n");
    set_mtime_ago(r->host(site), 3600);
  }
  rt::python_packages p{2};
  auto foo = pkg("foo", "1.0");
  BOOST_CHECK_EQUAL(p.lookup(a.path(), site + "foo.py", ""), foo);
  BOOST_CHECK_EQUAL(p.lookup(b.path(), site + "foo.py", ""), foo);
  BOOST_CHECK_EQUAL(p.lookup(a.path(), site + "foo.py", ""), foo);
  BOOST_CHECK_EQUAL(p.dirs_read(), 2u);
  BOOST_CHECK_EQUAL(p.lookup(c.path(), site + "foo.py", ""), foo);
  BOOST_CHECK_EQUAL(p.dirs_read(), 3u);
  BOOST_CHECK_EQUAL(p.cached_dirs(), 2u);
  BOOST_CHECK_EQUAL(p.lookup(a.path(), site + "foo.py", ""), foo);
  BOOST_CHECK_EQUAL(p.dirs_read(), 3u);
  BOOST_CHECK_EQUAL(p.lookup(b.path(), site + "foo.py", ""), foo);
  BOOST_CHECK_EQUAL(p.dirs_read(), 4u);
  BOOST_CHECK_EQUAL(p.cached_dirs(), 2u);
  // The byte budget evicts too.
  rt::python_packages_limits l;
  l.max_index_bytes = 100;
  rt::python_packages q{l};
  BOOST_CHECK_EQUAL(q.lookup(a.path(), site + "foo.py", ""), foo);
  BOOST_CHECK_EQUAL(q.lookup(b.path(), site + "foo.py", ""), foo);
  BOOST_CHECK_EQUAL(q.cached_dirs(), 1u);
}

// Each "(FILE.py:LINE)" whose file is known gets " [NAME==VERSION]"; the
// expected values are Python's re.sub with gProfiler's pattern.
BOOST_AUTO_TEST_CASE(stack_rewrite) {
  std::map<std::string, python_package> known = {
      {"/usr/lib/python3.11/site-packages/foo/bar.py", {"foo", "1.0"}},
      {"/usr/lib/python3.11/threading.py", {"standard-library", "3.11.2"}},
      {"a (b.py", {"weird", "2"}},
  };
  std::vector<std::string> asked;
  auto lookup = [&](const std::string& f) -> std::optional<python_package> {
    asked.push_back(f);
    auto it = known.find(f);
    if (it == known.end())
      return std::nullopt;
    return it->second;
  };
  BOOST_CHECK_EQUAL(
      rt::add_python_versions(
          "python3.11;<module> (/app/main.py:10)_[p];"
          "run (/usr/lib/python3.11/site-packages/foo/bar.py:5)_[p];"
          "join (/usr/lib/python3.11/threading.py:1112)_[p];"
          "again (/usr/lib/python3.11/site-packages/foo/bar.py:7)_[p]",
          lookup),
      "python3.11;<module> (/app/main.py:10)_[p];"
      "run (/usr/lib/python3.11/site-packages/foo/bar.py:5 [foo==1.0])_[p];"
      "join (/usr/lib/python3.11/threading.py:1112 "
      "[standard-library==3.11.2])_[p];"
      "again (/usr/lib/python3.11/site-packages/foo/bar.py:7 [foo==1.0])_[p]");
  BOOST_CHECK_EQUAL(asked.size(), 4u);
  // Frames without a .py file and line are left alone, unasked.
  asked.clear();
  std::string plain
      = "python3.11;_bootstrap (<frozen importlib._bootstrap>:241)"
        "_[p];x (/a/b.pyc:1)_[p];y (/a/b.py:)_[p];"
        "z (/a/b.py:12a)_[p];w (.py:1)_[p];native_[pn];"
        "v (/a/b.py 1)_[p]";
  BOOST_CHECK_EQUAL(rt::add_python_versions(plain, lookup), plain);
  BOOST_CHECK(asked.empty());
  // The match starts at the first '(' before the ')', as Python's does.
  asked.clear();
  BOOST_CHECK_EQUAL(rt::add_python_versions("f (a (b.py:3)_[p]", lookup),
                    "f (a (b.py:3 [weird==2])_[p]");
  BOOST_REQUIRE_EQUAL(asked.size(), 1u);
  BOOST_CHECK_EQUAL(asked[0], "a (b.py");
  asked.clear();
  BOOST_CHECK_EQUAL(
      rt::add_python_versions("(x) ((x.py:1)(y.py:2) .py:3)", lookup),
      "(x) ((x.py:1)(y.py:2) .py:3)");
  BOOST_CHECK_EQUAL(asked.size(), 2u);
  BOOST_CHECK_EQUAL(asked[0], "(x.py");
  BOOST_CHECK_EQUAL(asked[1], "y.py");
  // A file name with a line break and a longer line number.
  asked.clear();
  rt::add_python_versions("(a\nb.py:123456789012345678901234567890)", lookup);
  BOOST_REQUIRE_EQUAL(asked.size(), 1u);
  BOOST_CHECK_EQUAL(asked[0], "a\nb.py");
}

// Hostile stacks: huge, full of parentheses, NULs, no closing parenthesis;
// linear time, nothing changed that should not be.
BOOST_AUTO_TEST_CASE(stack_rewrite_hostile) {
  size_t calls = 0;
  auto lookup = [&](const std::string&) -> std::optional<python_package> {
    ++calls;
    return python_package{"p", "1"};
  };
  std::string opens(size_t{4} << 20, '(');
  BOOST_CHECK_EQUAL(rt::add_python_versions(opens, lookup), opens);
  BOOST_CHECK_EQUAL(calls, 0u);
  // One match closes four million '(': one call, from the first.
  auto one = rt::add_python_versions(opens + "x.py:1)", lookup);
  BOOST_CHECK_EQUAL(calls, 1u);
  BOOST_CHECK_EQUAL(one, opens + "x.py:1 [p==1])");
  std::string many;
  for (int i = 0; i < 100000; ++i)
    many += "(a.py:1)";
  calls = 0;
  auto out = rt::add_python_versions(many, lookup);
  BOOST_CHECK_EQUAL(calls, 100000u);
  BOOST_CHECK_EQUAL(out.size(), many.size() + 100000 * 7);
  std::string nul("(a\0b.py:1)", 10);
  calls = 0;
  BOOST_CHECK_EQUAL(rt::add_python_versions(nul, lookup),
                    std::string("(a\0b.py:1 [p==1])", 17));
  BOOST_CHECK_EQUAL(rt::add_python_versions("", lookup), "");
  BOOST_CHECK_EQUAL(rt::add_python_versions(")))(((", lookup), ")))(((");
  BOOST_CHECK_EQUAL(rt::add_python_versions("(.py:1)(ab.py:)", lookup),
                    "(.py:1)(ab.py:)");
}

// The version string in a binary: exactly one match of gProfiler's pattern
// (extended to 3.14), anywhere in the file, across read chunks.
BOOST_AUTO_TEST_CASE(version_in_binary) {
  fake_root r;
  auto version_of = [&](const std::string& content) {
    r.file("/bin/python", content);
    return rt::python_version_in_binary(r.path(), "/bin/python");
  };
  using namespace std::string_literals;
  BOOST_CHECK_EQUAL(version_of("\x7f"s + "ELF\0junk\0" + "3.11.2\0more"s),
                    "3.11.2");
  BOOST_CHECK_EQUAL(version_of("x2.7.18\0"s), "2.7.18");
  BOOST_CHECK_EQUAL(version_of("x3.5.10\0"s), "3.5.10");
  BOOST_CHECK_EQUAL(version_of("x3.14.0\0"s), "3.14.0");
  BOOST_CHECK_EQUAL(version_of("x3.9.1\0"s), "3.9.1");
  BOOST_CHECK_EQUAL(version_of("x3.15.0\0"s), "");
  BOOST_CHECK_EQUAL(version_of("x3.4.1\0"s), "");
  BOOST_CHECK_EQUAL(version_of("x2.6.9\0"s), "");
  BOOST_CHECK_EQUAL(version_of("3.11.2\0"s), "");
  BOOST_CHECK_EQUAL(version_of("13.11.2\0"s), "");
  BOOST_CHECK_EQUAL(version_of("x3.11.123\0"s), "");
  BOOST_CHECK_EQUAL(version_of("x3.11.2"s), "");
  BOOST_CHECK_EQUAL(version_of("x3.11.2+\0"s), "");
  BOOST_CHECK_EQUAL(version_of("x3.11.\0"s), "");
  // The same version twice is that version (gProfiler takes none).
  BOOST_CHECK_EQUAL(version_of("x3.11.2\0y3.11.2\0"s), "3.11.2");
  BOOST_CHECK_EQUAL(version_of("x3.11.2\0y3.12.1\0"s), "");
  BOOST_CHECK_EQUAL(version_of("x3.11.2.3.11.1\0"s), "3.11.1");
  BOOST_CHECK_EQUAL(version_of("x3.11.2\0"
                               "3.12.1\0"s),
                    "");
  BOOST_CHECK_EQUAL(version_of("x3.11.2\0"
                               "13.12.1\0"s),
                    "3.11.2");
  BOOST_CHECK_EQUAL(version_of(""), "");
  // Across the 1 MiB chunks, at every offset near the boundary.
  for (uint64_t at = (uint64_t{1} << 20) - 10; at < (uint64_t{1} << 20) + 2;
       ++at) {
    write_at(r.host("/bin/python"), at, "x3.10.13\0"s);
    BOOST_TEST_INFO("at " << at);
    BOOST_CHECK_EQUAL(rt::python_version_in_binary(r.path(), "/bin/python"),
                      "3.10.13");
  }
  // Two matches a chunk apart.
  write_at(r.host("/bin/python"), 100, "x3.10.13\0"s);
  write_at(r.host("/bin/python"), (uint64_t{3} << 20), "x"s, true);
  BOOST_CHECK_EQUAL(rt::python_version_in_binary(r.path(), "/bin/python"),
                    "3.10.13");
  write_at(r.host("/bin/python"), (uint64_t{3} << 20) - 50, "y3.8.1\0"s, true);
  BOOST_CHECK_EQUAL(rt::python_version_in_binary(r.path(), "/bin/python"), "");
  // Missing, a FIFO (not waited on), a directory, a symlink out of the root.
  BOOST_CHECK_EQUAL(rt::python_version_in_binary(r.path(), "/bin/none"), "");
  BOOST_REQUIRE(::mkfifo(r.host("/bin/fifo").c_str(), 0644) == 0);
  BOOST_CHECK_EQUAL(rt::python_version_in_binary(r.path(), "/bin/fifo"), "");
  BOOST_CHECK_EQUAL(rt::python_version_in_binary(r.path(), "/bin"), "");
  fake_root outside;
  outside.file("/python", "x3.11.2\0"s);
  BOOST_REQUIRE(
      ::symlink(outside.host("/python").c_str(), r.host("/bin/out").c_str())
      == 0);
  BOOST_CHECK_EQUAL(rt::python_version_in_binary(r.path(), "/bin/out"), "");
  BOOST_CHECK_EQUAL(rt::python_version_in_binary("/", outside.host("/python")),
                    "3.11.2");
}

BOOST_AUTO_TEST_SUITE_END()

// -- real interpreters and gProfiler's own computation
// --------------------------

namespace {

/// The standard output of `cmd` (run by the shell; the tests' own paths).
std::string run(const std::string& cmd) {
  FILE* f = ::popen(cmd.c_str(), "r");
  BOOST_REQUIRE(f != nullptr);
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    out.append(buf, n);
  ::pclose(f);
  return out;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.')
        out.emplace_back(e->d_name);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// The .py files under `dir`, not following symlinks.
void walk_py(const std::string& dir, std::vector<std::string>& out,
             int depth = 0) {
  if (depth > 20)
    return;
  for (auto& name : list_dir(dir)) {
    std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0)
      continue;
    if (S_ISDIR(st.st_mode))
      walk_py(path, out, depth + 1);
    else if (name.size() > 3 && name.compare(name.size() - 3, 3, ".py") == 0)
      out.push_back(path);
  }
}

/// A Python with pkg_resources for the oracle: Debian's, else pyenv's 3.11.
std::string oracle_python() {
  for (std::string py :
       {"/usr/bin/python3", "/root/.pyenv/versions/3.11.7/bin/python"})
    if (exists(py)
        && run(py + " -c 'import pkg_resources; print(1)' 2>/dev/null")
               == "1\n")
      return py;
  return {};
}

const std::string oracle_py
    = std::string{GPA_TEST_SUPPORT_DIR} + "/python_packages_oracle.py";

/// Every .py file of packages directory `dir` (a host path ending with '/')
/// has the package gProfiler's computation gives it, and no other file (in
/// the directory, or in `more`) has one. Returns the number of files with a
/// package.
size_t compare_with_oracle(const std::string& py, const std::string& dir,
                           const std::vector<std::string>& more = {}) {
  auto text = run(py + " " + oracle_py + " tree '" + dir + "' 2>/dev/null");
  rapidjson::Document doc;
  BOOST_REQUIRE_EQUAL(format::parse_json(doc, text), "");
  BOOST_REQUIRE(doc.IsObject());
  rt::python_packages p;
  std::set<std::string> named;
  size_t n = 0;
  for (auto& m : doc.GetObject()) {
    std::string file{m.name.GetString(), m.name.GetStringLength()};
    named.insert(file);
    // gProfiler looks a file up in the last packages directory of its path
    // (an absolute RECORD entry may name a file elsewhere).
    if (rt::python_packages_dir(file) != dir)
      continue;
    auto expected = pkg(m.value[0].GetString(), m.value[1].GetString());
    BOOST_TEST_INFO("file " << file);
    BOOST_CHECK_EQUAL(p.lookup("/", file, ""), expected);
    ++n;
  }
  std::vector<std::string> files = more;
  walk_py(dir.substr(0, dir.size() - 1), files);
  for (auto& f : files) {
    if (named.count(f) != 0 || rt::python_packages_dir(f) != dir)
      continue;
    BOOST_TEST_INFO("file " << f);
    BOOST_CHECK_EQUAL(p.lookup("/", f, ""), unknown);
  }
  BOOST_CHECK_EQUAL(p.dirs_read(), 1u);
  return n;
}

/// Random strings made of `tokens`.
std::vector<std::string> random_strings(std::mt19937& rng,
                                        const std::vector<std::string>& tokens,
                                        size_t count, size_t max_tokens) {
  std::vector<std::string> out;
  std::uniform_int_distribution<size_t> len(0, max_tokens);
  std::uniform_int_distribution<size_t> pick(0, tokens.size() - 1);
  for (size_t i = 0; i < count; ++i) {
    std::string s;
    for (size_t n = len(rng); n > 0; --n)
      s += tokens[pick(rng)];
    out.push_back(std::move(s));
  }
  return out;
}

void write_strings(rapidjson::Writer<rapidjson::StringBuffer>& w,
                   const char* key, const std::vector<std::string>& xs) {
  w.Key(key);
  w.StartArray();
  for (auto& x : xs)
    w.String(x.data(), static_cast<rapidjson::SizeType>(x.size()));
  w.EndArray();
}

std::string str(const rapidjson::Value& v) {
  return std::string{v.GetString(), v.GetStringLength()};
}

} // namespace

BOOST_AUTO_TEST_SUITE(python_packages_real)

// Each pyenv interpreter: pip's files belong to pip at the version in its
// dist-info's name, os.py to the standard library at the interpreter's
// version, and libpython holds that version (what `python -V` prints).
BOOST_AUTO_TEST_CASE(pyenv_interpreters) {
  const std::string versions = "/root/.pyenv/versions";
  size_t checked = 0;
  rt::python_packages p;
  for (auto& v : list_dir(versions)) {
    const std::string home = versions + "/" + v;
    auto minor = v.substr(0, v.rfind('.'));
    const std::string lib = home + "/lib/python" + minor;
    if (!exists(lib + "/os.py"))
      continue;
    BOOST_TEST_INFO("python " << v);
    auto printed = run(home + "/bin/python -V 2>&1");
    BOOST_REQUIRE_EQUAL(printed, "Python " + v + "\n");
    std::string binary;
    for (auto& f : list_dir(home + "/lib"))
      if (f.rfind("libpython" + minor, 0) == 0 && f.size() > 7
          && f.compare(f.size() - 7, 7, ".so.1.0") == 0)
        binary = home + "/lib/" + f;
    if (binary.empty())
      binary = home + "/bin/python" + minor;
    BOOST_TEST_INFO("binary " << binary);
    BOOST_CHECK_EQUAL(rt::python_version_in_binary("/", binary), v);
    BOOST_CHECK_EQUAL(rt::python_version_in_binary("/proc/self/root", binary),
                      v);
    BOOST_CHECK_EQUAL(p.lookup("/", lib + "/os.py", v),
                      pkg("standard-library", v));
    BOOST_CHECK_EQUAL(p.lookup("/proc/self/root", lib + "/json/decoder.py", v),
                      pkg("standard-library", v));
    const std::string site_dir = lib + "/site-packages";
    std::string pip_version;
    for (auto& f : list_dir(site_dir))
      if (f.rfind("pip-", 0) == 0 && f.size() > 14
          && f.compare(f.size() - 10, 10, ".dist-info") == 0)
        pip_version = f.substr(4, f.size() - 14);
    BOOST_REQUIRE(!pip_version.empty());
    BOOST_CHECK_EQUAL(p.lookup("/", site_dir + "/pip/__init__.py", v),
                      pkg("pip", pip_version));
    BOOST_CHECK_EQUAL(
        p.lookup("/proc/self/root", site_dir + "/pip/_internal/__init__.py", v),
        pkg("pip", pip_version));
    ++checked;
  }
  BOOST_TEST_MESSAGE("pyenv interpreters checked: " << checked);
}

// Debian's python3.11 (libpython linked into the executable).
BOOST_AUTO_TEST_CASE(debian_python) {
  const std::string py = "/usr/bin/python3.11";
  if (!exists(py)) {
    BOOST_TEST_MESSAGE("no " << py);
    return;
  }
  auto printed = run(py + " -V 2>&1");
  BOOST_REQUIRE_EQUAL(printed.rfind("Python 3.11.", 0), 0u);
  auto v = printed.substr(7, printed.size() - 8);
  BOOST_CHECK_EQUAL(rt::python_version_in_binary("/", py), v);
  rt::python_packages p;
  BOOST_CHECK_EQUAL(p.lookup("/", "/usr/lib/python3.11/os.py", v),
                    pkg("standard-library", v));
  BOOST_CHECK_EQUAL(p.lookup("/", "/usr/lib/python3/dist-packages/os.py", v),
                    unknown);
}

// Every .py file of real packages directories (pyenv 3.11's site-packages
// with its ~90 distributions, Debian's dist-packages with egg-infos) and of
// a synthetic one with every rule in it: what gProfiler's own computation
// gives.
BOOST_AUTO_TEST_CASE(same_as_gprofiler_on_trees) {
  auto py = oracle_python();
  if (py.empty()) {
    BOOST_TEST_MESSAGE("no python3 with pkg_resources: skipped");
    return;
  }
  for (std::string dir :
       {"/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/",
        "/root/.pyenv/versions/2.7.18/lib/python2.7/site-packages/",
        "/usr/lib/python3/dist-packages/"}) {
    if (!exists(dir))
      continue;
    BOOST_TEST_INFO("directory " << dir);
    auto n = compare_with_oracle(py, dir);
    BOOST_TEST_MESSAGE(dir << ": " << n << " files in packages");
    BOOST_CHECK_GT(n, 0u);
  }
  fake_root r;
  r.dist_info(site, "foo-1.2.3.dist-info",
              "foo/__init__.py,sha256=abc,10\n"
              "foo/bar.py,sha256=def,20\r\n"
              "\"foo/with,comma.py\",sha256=x,1\n"
              "\"foo/\"\"quoted\"\".py\",,\n"
              "\"foo/multi\nline.py\",,\n"
              "foo/./dotted//x.py,,\n"
              "../../../bin/foo.py,sha256=y,5\n"
              "\"foo/after\"quote.py,,\n"
              "/abs/path.py,,\n",
              "Metadata-Version: 2.1\nName: Foo-Pkg\nVersion: 9.9\n\n"
              "Name: body\n");
  r.dist_info(site, "bar.dist-info", "bar.py,,\n",
              "Name: bar\nVersion: 2.0-RC1\n");
  r.dist_info(site, "my_pkg-0.1.dist-info", "my_pkg.py,,\n",
              "Metadata-Version: 2.1\nSummary: no name\n");
  r.dist_info(site, "lower-1.0.dist-info", "lower.py,,\n",
              "name: first\nName: second\n");
  r.dist_info(site, "onlylower-1.0.dist-info", "onlylower.py,,\n",
              "name: lowercase only\n");
  r.dist_info(site, "spaced-1.0_RC2.dist-info", "spaced.py,,\n",
              "From nobody\nName:   Spaced Out \r\nVersion: 7\r\n");
  r.file(site + "pkginfo-2.0.dist-info/RECORD", "pkginfo.py,,\n");
  r.file(site + "pkginfo-2.0.dist-info/PKG-INFO", "Name: from-pkg-info\n");
  r.dist_info(site, "empty-1.0.dist-info", "empty.py,,\n", "");
  r.dist_info(site, "body-1.0.dist-info", "body.py,,\n", "\nName: body\n");
  r.dist_info(site, "semi-1.0.dist-info", "semi.py,,\n", "Name: a;b\n");
  r.dist_info(site, "folded-1.0.dist-info", "folded.py,,\n", "Name: a\n b\n");
  r.dist_info(site, "noversion.dist-info", "noversion.py,,\n",
              "Name: noversion\n");
  r.dist_info(site, "invalid-1.0+.dist-info", "invalid.py,,\n",
              "Name: invalid\n");
  r.dist_info(site, "Upper-1.0.DIST-INFO", "upper.py,,\n", "Name: upper\n");
  r.dist_info(site, "aaa-1.0.dist-info", "shared.py,,\nfirst.py,,\n",
              "Name: aaa\n");
  r.dist_info(site, "zzz-2.0.dist-info", "shared.py,,\n", "Name: zzz\n");
  r.dist_info(site, "Zed-3.0.dist-info", "first.py,,\n", "Name: Zed\n");
  r.dist_info(site, "-1.0.dist-info", "dash.py,,\n", "Summary: x\n");
  r.dist_info(site, "nover-.dist-info", "nover.py,,\n",
              "Summary: x\nversion: 4.0\n");
  r.file(site + "baz-0.8-py3.11.egg-info/installed-files.txt",
         "../baz/__init__.py\n../baz/sub/mod.py\nPKG-INFO\n"
         "../../../../bin/baz\n\n./../baz/dot.py\n../../../../bin/tool.py\n"
         "inside.py\n/usr/lib/python3.11/site-packages/baz/abs.py\n");
  r.file(site + "baz-0.8-py3.11.egg-info/PKG-INFO",
         "Metadata-Version: 1.1\nName: baz\nVersion: 0.9.post1\n");
  r.file(site + "qux-3.1-py3.11.egg-info/installed-files.txt", "../qux.py\n");
  r.file(site + "qux-3.1-py3.11.egg-info/PKG-INFO", "Name: qux\n");
  r.file(site + "eggfile-1.0.egg-info", "Name: eggfile\n");
  r.file(site + "both-1.0.dist-info/installed-files.txt", "../both.py\n");
  r.file(site + "both-1.0.dist-info/METADATA", "Name: both\n");
  for (auto f : {"foo/__init__.py", "foo/bar.py", "foo/dotted/x.py",
                 "nothing.py", "bar.py", "baz/__init__.py", "baz/other.py"})
    r.file(site + f, "");
  auto n = compare_with_oracle(py, r.host(site));
  BOOST_CHECK_GT(n, 20u);
}

// Random distributions: names, RECORDs, installed-files.txt and metadata
// made of the characters that matter to their parsers.
BOOST_AUTO_TEST_CASE(same_as_gprofiler_on_random_trees) {
  auto py = oracle_python();
  if (py.empty()) {
    BOOST_TEST_MESSAGE("no python3 with pkg_resources: skipped");
    return;
  }
  std::mt19937 rng{7};
  auto names = random_strings(
      rng, {"a", "b", "-", "_", "1.0", "rc1", ".", "Post", "+x", " "}, 300, 5);
  auto records = random_strings(
      rng,
      {",", "\"", "\n", "\r\n", "\r", "a", "b.py", ".py", "/", "..", ".", "//",
       "a.py,,\n", "\"a,b.py\"", ",sha256=x,1\n", "c.py\n", "d/e.py,\n"},
      300, 14);
  auto legacy = random_strings(
      rng,
      {"..", "/", "a", ".py", ".", "\n", "b", "../", "x.py\n", "../y.py\n"},
      300, 10);
  auto metadata = random_strings(
      rng,
      {"Name", "name", "NAME", ":", " ", "\t", "\n", "\r\n", "From ", "x",
       "Version", "version: ", "1.0", ";", "Name: n\n", "Version: 2.0\n"},
      300, 10);
  std::uniform_int_distribution<int> coin(0, 3);
  fake_root r;
  std::vector<std::string> more;
  for (size_t i = 0; i < names.size(); ++i) {
    bool egg = coin(rng) == 0;
    // Unique names, most with a version.
    auto entry = (coin(rng) == 0 ? "" : "n" + std::to_string(i) + "-")
                 + names[i] + "." + std::to_string(i)
                 + (egg ? ".egg-info"
                        : (coin(rng) == 0 ? ".DIST-INFO" : ".dist-info"));
    auto base = site + entry + "/";
    if (egg)
      r.file(base + "installed-files.txt", legacy[i]);
    else
      r.file(base + "RECORD", records[i]);
    // Mostly with a header first, so that most distributions count.
    r.file(base + (egg || coin(rng) == 0 ? "PKG-INFO" : "METADATA"),
           (coin(rng) == 0 ? "" : "Metadata-Version: 2.1\n") + metadata[i]);
    // What a parser that went wrong could index: each piece of each line.
    for (auto* text : {&records[i], &legacy[i]}) {
      std::string piece;
      for (char c : *text + "\n") {
        if (c == '\n' || c == '\r' || c == ',') {
          more.push_back(r.host(site) + piece);
          more.push_back(r.host(site) + rt::python_normalize_path(piece));
          piece.clear();
        } else if (c != '"') {
          piece += c;
        }
      }
    }
  }
  auto n = compare_with_oracle(py, r.host(site), more);
  BOOST_TEST_MESSAGE("random tree: " << n << " files in packages");
  BOOST_CHECK_GT(n, 10u);
}

// Random stacks, paths and versions: the frame rewrite, the standard
// library's pattern, the packages directory, pathlib's normalization and
// safe_version give what gProfiler's Python gives.
BOOST_AUTO_TEST_CASE(same_as_gprofiler_on_random_text) {
  auto py = oracle_python();
  if (py.empty()) {
    BOOST_TEST_MESSAGE("no python3 with pkg_resources: skipped");
    return;
  }
  std::mt19937 rng{20240611};
  auto stacks = random_strings(rng,
                               {"(", ")", "/", ".py", ":", "1", "23", "k", "x",
                                ";", " ", "_[p]", ".py:", "(/a", "\n", ".pyc",
                                "((", "k.py:7)"},
                               3000, 30);
  auto paths = random_strings(rng,
                              {"/",
                               "python3.11",
                               "python3.1",
                               "python2.7",
                               "python3",
                               "python3.111",
                               "site-packages",
                               "dist-packages",
                               "lib",
                               "k",
                               ".",
                               "..",
                               "//",
                               "x.py",
                               "\n",
                               "-",
                               "site",
                               "packages",
                               "/python3.9/",
                               "/site-packages/"},
                              3000, 12);
  auto versions = random_strings(
      rng, {"1",    "0",    "01",  ".",   "-",     "_",    "+",   "!",
            "a",    "b",    "c",   "rc",  "alpha", "beta", "pre", "preview",
            "post", "rev",  "r",   "dev", "v",     "V",    " ",   "x",
            "RC",   "Post", "DEV", "\t",  "~",     "1.0",  "2!"},
      3000, 8);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  write_strings(w, "stacks", stacks);
  write_strings(w, "paths", paths);
  write_strings(w, "versions", versions);
  w.EndObject();
  fake_root r;
  r.file("/in.json", std::string_view{buf.GetString(), buf.GetSize()});
  auto text = run(py + " " + oracle_py + " rules " + r.host("/in.json")
                  + " 2>/dev/null");
  rapidjson::Document doc;
  BOOST_REQUIRE_EQUAL(format::parse_json(doc, text), "");
  auto known = [](const std::string& f) -> std::optional<python_package> {
    if (f.find('k') == std::string::npos)
      return std::nullopt;
    return python_package{"pkg", "1.0"};
  };
  for (size_t i = 0; i < stacks.size(); ++i) {
    BOOST_TEST_INFO("stack '" << stacks[i] << "'");
    BOOST_CHECK_EQUAL(rt::add_python_versions(stacks[i], known),
                      str(doc["stacks"][static_cast<unsigned>(i)]));
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    auto k = static_cast<unsigned>(i);
    BOOST_TEST_INFO("path '" << paths[i] << "'");
    BOOST_CHECK_EQUAL(rt::python_stdlib_file(paths[i]),
                      doc["stdlib"][k].GetBool());
    BOOST_CHECK_EQUAL(rt::python_packages_dir(paths[i]),
                      str(doc["packages_dir"][k]));
    BOOST_CHECK_EQUAL(rt::python_normalize_path(paths[i]),
                      str(doc["pathlib"][k]));
  }
  for (size_t i = 0; i < versions.size(); ++i) {
    BOOST_TEST_INFO("version '" << versions[i] << "'");
    BOOST_CHECK_EQUAL(rt::python_safe_version(versions[i]),
                      str(doc["versions"][static_cast<unsigned>(i)]));
  }
}

BOOST_AUTO_TEST_SUITE_END()
