// The files the agent writes as root: opened the one safe way (no links, no
// FIFOs or devices, no truncation), the PID file, the log file's rotation,
// the private temporary directory and the clean-up of dead agents' ones, and
// the output directory's check at start.

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/process_env.hpp"
#include "runtime/written_file.hpp"

using namespace gpa;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream{path} << text;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

unsigned kind(const std::string& path) {
  struct stat st {};
  BOOST_REQUIRE_EQUAL(::lstat(path.c_str(), &st), 0);
  return st.st_mode & S_IFMT;
}

/// The error text of `x`, which must be an error.
template <class T>
std::string error_of(const caf::expected<T>& x) {
  BOOST_REQUIRE(!x);
  return message_of(x.error());
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A PID that no process has (a child that was reaped).
pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0)
    ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

struct fixture {
  rt::private_temp_dir temp{"/tmp"};
  std::string dir = temp.path();
  std::string victim = dir + "/victim";

  fixture() {
    write_file(victim, "precious");
  }

  std::string at(const std::string& name) const {
    return dir + "/" + name;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(written_files)

// -- open_written_file
// ---------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(creates_new_files_and_reuses_without_truncating,
                        fixture) {
  auto path = at("f");
  {
    auto f = rt::open_written_file(path, rt::if_exists::reuse, 0640);
    BOOST_REQUIRE(f);
    BOOST_CHECK(f->created());
    BOOST_CHECK_EQUAL(::write(f->fd(), "one", 3), 3);
  }
  BOOST_CHECK_EQUAL(kind(path), unsigned{S_IFREG});
  struct stat st {};
  ::stat(path.c_str(), &st);
  BOOST_CHECK_EQUAL(st.st_mode & 0777, 0640u);
  auto again = rt::open_written_file(path, rt::if_exists::reuse, 0640);
  BOOST_REQUIRE(again);
  BOOST_CHECK(!again->created());
  BOOST_CHECK_EQUAL(read_file(path), "one");
  BOOST_CHECK(again->still_at(path));
  BOOST_CHECK(
      contains(error_of(rt::open_written_file(path, rt::if_exists::fail, 0600)),
               "exists already"));
}

BOOST_FIXTURE_TEST_CASE(refuses_fifos_without_blocking, fixture) {
  auto fifo = at("fifo");
  BOOST_REQUIRE_EQUAL(::mkfifo(fifo.c_str(), 0600), 0);
  for (bool read : {false, true}) {
    auto why = error_of(
        rt::open_written_file(fifo, rt::if_exists::reuse, 0600, read));
    BOOST_CHECK_MESSAGE(contains(why, fifo + ": it is a FIFO"), why);
  }
  BOOST_CHECK_EQUAL(kind(fifo), unsigned{S_IFIFO});
}

BOOST_FIXTURE_TEST_CASE(refuses_devices_without_opening_them, fixture) {
  auto dev = at("null");
  if (::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    BOOST_TEST_MESSAGE("mknod needs root: skipped");
    return;
  }
  auto why = error_of(rt::open_written_file(dev, rt::if_exists::reuse, 0600));
  BOOST_CHECK_MESSAGE(contains(why, "it is a character device"), why);
  BOOST_CHECK_EQUAL(kind(dev), unsigned{S_IFCHR});
}

BOOST_FIXTURE_TEST_CASE(refuses_directories_links_and_hard_links, fixture) {
  auto sub = at("sub");
  BOOST_REQUIRE_EQUAL(::mkdir(sub.c_str(), 0700), 0);
  BOOST_CHECK(
      contains(error_of(rt::open_written_file(sub, rt::if_exists::reuse, 0600)),
               "it is a directory"));
  auto link = at("link");
  BOOST_REQUIRE_EQUAL(::symlink(victim.c_str(), link.c_str()), 0);
  for (auto how : {rt::if_exists::reuse, rt::if_exists::fail})
    BOOST_CHECK(contains(error_of(rt::open_written_file(link, how, 0600)),
                         "symbolic link"));
  auto hard = at("hard");
  BOOST_REQUIRE_EQUAL(::link(victim.c_str(), hard.c_str()), 0);
  BOOST_CHECK(contains(
      error_of(rt::open_written_file(hard, rt::if_exists::reuse, 0600)),
      "2 hard links"));
  BOOST_CHECK_EQUAL(read_file(victim), "precious");
}

BOOST_FIXTURE_TEST_CASE(knows_when_its_name_is_taken_over, fixture) {
  auto path = at("f");
  auto f = rt::open_written_file(path, rt::if_exists::reuse, 0600);
  BOOST_REQUIRE(f);
  write_file(at("other"), "x");
  BOOST_REQUIRE_EQUAL(::rename(at("other").c_str(), path.c_str()), 0);
  BOOST_CHECK(!f->still_at(path));
}

// -- trees and temporary directories
// ------------------------------------------

BOOST_FIXTURE_TEST_CASE(remove_tree_never_follows_links, fixture) {
  auto outside = at("outside");
  BOOST_REQUIRE_EQUAL(::mkdir(outside.c_str(), 0700), 0);
  write_file(outside + "/keep", "keep");
  auto tree = at("tree");
  BOOST_REQUIRE_EQUAL(::mkdir(tree.c_str(), 0700), 0);
  BOOST_REQUIRE_EQUAL(::mkdir((tree + "/a").c_str(), 0700), 0);
  write_file(tree + "/a/perf.data", "data");
  BOOST_REQUIRE_EQUAL(::symlink(outside.c_str(), (tree + "/a/l").c_str()), 0);
  BOOST_REQUIRE_EQUAL(::symlink(outside.c_str(), (tree + "/l").c_str()), 0);
  BOOST_REQUIRE_EQUAL(::mkfifo((tree + "/fifo").c_str(), 0600), 0);
  rt::remove_tree(tree);
  BOOST_CHECK(!exists(tree));
  BOOST_CHECK_EQUAL(read_file(outside + "/keep"), "keep");
}

BOOST_FIXTURE_TEST_CASE(private_temp_dir_holds_its_lock_until_removed,
                        fixture) {
  std::string path;
  {
    rt::private_temp_dir t{dir};
    path = t.path();
    auto lock = path + "/" + rt::temp_lock_name;
    BOOST_CHECK_EQUAL(kind(lock), unsigned{S_IFREG});
    int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    BOOST_CHECK_NE(::flock(fd, LOCK_EX | LOCK_NB), 0); // held
    ::close(fd);
    BOOST_CHECK(rt::remove_stale_temp_dirs(dir).empty());
    BOOST_CHECK(exists(path));
  }
  BOOST_CHECK(!exists(path));
}

BOOST_FIXTURE_TEST_CASE(stale_temp_dirs_of_dead_agents_are_removed, fixture) {
  rt::private_temp_dir live{dir};
  // A dead agent's: its lock file is there, nobody holds it.
  auto dead = at("gprofiler-agent.dead01");
  BOOST_REQUIRE_EQUAL(::mkdir(dead.c_str(), 0700), 0);
  write_file(dead + "/" + rt::temp_lock_name, "");
  BOOST_REQUIRE_EQUAL(::mkdir((dead + "/sub").c_str(), 0700), 0);
  write_file(dead + "/sub/perf.data", "data");
  BOOST_REQUIRE_EQUAL(::symlink(victim.c_str(), (dead + "/l").c_str()), 0);
  // Not a dead agent's: no lock file, another mode, a link, a file, a name
  // of another length.
  auto no_lock = at("gprofiler-agent.nolock");
  BOOST_REQUIRE_EQUAL(::mkdir(no_lock.c_str(), 0700), 0);
  auto open_mode = at("gprofiler-agent.mode55");
  BOOST_REQUIRE_EQUAL(::mkdir(open_mode.c_str(), 0700), 0);
  BOOST_REQUIRE_EQUAL(::chmod(open_mode.c_str(), 0755), 0);
  write_file(open_mode + "/" + rt::temp_lock_name, "");
  auto target = at("target");
  BOOST_REQUIRE_EQUAL(::mkdir(target.c_str(), 0700), 0);
  write_file(target + "/" + rt::temp_lock_name, "");
  write_file(target + "/keep", "keep");
  auto link = at("gprofiler-agent.link00");
  BOOST_REQUIRE_EQUAL(::symlink(target.c_str(), link.c_str()), 0);
  auto other = at("gprofiler-agent.longername");
  BOOST_REQUIRE_EQUAL(::mkdir(other.c_str(), 0700), 0);
  write_file(other + "/" + rt::temp_lock_name, "");

  auto removed = rt::remove_stale_temp_dirs(dir);
  BOOST_REQUIRE_EQUAL(removed.size(), 1u);
  BOOST_CHECK_EQUAL(removed[0], "gprofiler-agent.dead01");
  BOOST_CHECK(!exists(dead));
  BOOST_CHECK(exists(live.path()));
  for (auto& kept : {no_lock, open_mode, link, other})
    BOOST_CHECK_MESSAGE(exists(kept), kept);
  BOOST_CHECK_EQUAL(read_file(target + "/keep"), "keep");
  BOOST_CHECK_EQUAL(read_file(victim), "precious");
}

// -- the output directory
// ------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(output_dir_is_checked_at_start, fixture) {
  auto out = at("a/b/out");
  BOOST_CHECK_EQUAL(rt::check_output_dir(out), "");
  BOOST_CHECK_EQUAL(kind(out), unsigned{S_IFDIR});
  BOOST_CHECK_EQUAL(::rmdir(out.c_str()), 0); // the probe is gone
  auto why = rt::check_output_dir(victim);
  BOOST_CHECK_MESSAGE(contains(why, "output directory " + victim
                                        + ": it is a regular file, not a "
                                          "directory"),
                      why);
  auto link = at("link");
  BOOST_REQUIRE_EQUAL(::symlink(dir.c_str(), link.c_str()), 0);
  BOOST_CHECK(contains(rt::check_output_dir(link), "a symbolic link"));
  BOOST_CHECK(contains(rt::check_output_dir(victim + "/sub"), victim));
  if (::geteuid() != 0) {
    auto ro = at("ro");
    BOOST_REQUIRE_EQUAL(::mkdir(ro.c_str(), 0500), 0);
    BOOST_CHECK(contains(rt::check_output_dir(ro), "Permission denied"));
  }
}

// -- the PID file
// --------------------------------------------------------------

namespace {

/// The exit status of the start_error that making a pid_file at `path`
/// throws (0 if it does not throw); its message in `what`.
int pid_file_status(const std::string& path, std::string& what) {
  try {
    rt::pid_file p{path};
    return 0;
  } catch (const rt::start_error& ex) {
    what = ex.what();
    return ex.status();
  }
}

} // namespace

BOOST_FIXTURE_TEST_CASE(pid_file_refuses_what_is_not_a_pid_file, fixture) {
  std::string what;
  auto fifo = at("fifo");
  BOOST_REQUIRE_EQUAL(::mkfifo(fifo.c_str(), 0600), 0);
  BOOST_CHECK_EQUAL(pid_file_status(fifo, what), 2);
  BOOST_CHECK_MESSAGE(contains(what, "a FIFO"), what);
  BOOST_CHECK_EQUAL(kind(fifo), unsigned{S_IFIFO});
  auto link = at("link");
  BOOST_REQUIRE_EQUAL(::symlink(victim.c_str(), link.c_str()), 0);
  BOOST_CHECK_EQUAL(pid_file_status(link, what), 2);
  BOOST_CHECK(contains(what, "symbolic link"));
  BOOST_CHECK_EQUAL(pid_file_status(victim, what), 2);
  BOOST_CHECK_MESSAGE(contains(what, "not a PID"), what);
  BOOST_CHECK_EQUAL(read_file(victim), "precious");
  BOOST_CHECK_EQUAL(pid_file_status(dir, what), 2);
  BOOST_CHECK(contains(what, "a directory"));
}

BOOST_FIXTURE_TEST_CASE(pid_file_reuses_a_dead_pid_and_removes_only_its_own,
                        fixture) {
  auto path = at("agent.pid");
  auto mine = std::to_string(::getpid()) + "\n";
  write_file(path, std::to_string(dead_pid()) + "\n");
  {
    rt::pid_file p{path};
    BOOST_CHECK_EQUAL(read_file(path), mine);
    // A second one is refused while the first holds the lock, naming it.
    std::string what;
    BOOST_CHECK_EQUAL(pid_file_status(path, what), 1);
    BOOST_CHECK(contains(what, "PID " + std::to_string(::getpid())));
  }
  BOOST_CHECK(!exists(path));
  {
    rt::pid_file p{path}; // created
    BOOST_CHECK_EQUAL(read_file(path), mine);
    // Someone puts another file at the name: not ours to remove.
    write_file(at("other"), "12345\n");
    BOOST_REQUIRE_EQUAL(::rename(at("other").c_str(), path.c_str()), 0);
  }
  BOOST_CHECK_EQUAL(read_file(path), "12345\n");
  BOOST_REQUIRE_EQUAL(::unlink(path.c_str()), 0);
  write_file(path, "");
  {
    rt::pid_file p{path}; // empty: reused
    BOOST_CHECK_EQUAL(read_file(path), mine);
  }
  BOOST_CHECK(!exists(path));
}

// -- the log file
// --------------------------------------------------------------

BOOST_FIXTURE_TEST_CASE(log_file_refuses_fifos_and_devices, fixture) {
  log_options opts;
  opts.file = at("agent.log");
  BOOST_REQUIRE_EQUAL(::mkfifo(opts.file.c_str(), 0600), 0);
  auto why = log::setup(opts);
  BOOST_CHECK_MESSAGE(contains(why, opts.file + ": it is a FIFO"), why);
  log::get("written-test")->warn("to the console only");
  BOOST_CHECK_EQUAL(kind(opts.file), unsigned{S_IFIFO});
  log::silence();
}

BOOST_FIXTURE_TEST_CASE(log_file_rotates_regular_files_only, fixture) {
  log_options opts;
  opts.file = at("logs/agent.log"); // the directory is created
  opts.rotate_max_size = 1000;
  opts.rotate_backup_count = 2;
  BOOST_REQUIRE_EQUAL(log::setup(opts), "");
  auto lg = log::get("written-test");
  std::string line(100, 'x');
  for (int i = 0; i < 40; ++i)
    lg->warn("{} {}", i, line);
  lg->flush();
  auto one = at("logs/agent.1.log");
  auto two = at("logs/agent.2.log");
  for (auto& f : {opts.file, one, two}) {
    struct stat st {};
    BOOST_REQUIRE_MESSAGE(::stat(f.c_str(), &st) == 0, f);
    BOOST_CHECK_LE(st.st_size, 1000);
    BOOST_CHECK_GT(st.st_size, 0);
  }
  BOOST_CHECK(contains(read_file(opts.file), "39 xxx"));
  // A FIFO at a backup's name: rotation stops, nothing blocks, the FIFO
  // stays, and the log goes on (growing).
  BOOST_REQUIRE_EQUAL(::unlink(two.c_str()), 0);
  BOOST_REQUIRE_EQUAL(::mkfifo(two.c_str(), 0600), 0);
  for (int i = 40; i < 80; ++i)
    lg->warn("{} {}", i, line);
  lg->flush();
  BOOST_CHECK_EQUAL(kind(two), unsigned{S_IFIFO});
  BOOST_CHECK(contains(read_file(opts.file), "79 xxx"));
  log::silence();
}

BOOST_AUTO_TEST_SUITE_END()
