// The real file system's writes: atomic, private temporaries, and never
// through a symlink planted where the agent writes.

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/log.hpp"
#include "runtime/process_env.hpp"

using namespace gpa;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct files_fixture {
  rt::private_temp_dir temp{"/tmp"};
  std::shared_ptr<rt::file_system> fs = rt::make_posix_file_system();
  std::string dir = temp.path() + "/out";
  std::string victim = temp.path() + "/victim";

  files_fixture() {
    std::ofstream{victim} << "precious";
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(files)

BOOST_FIXTURE_TEST_CASE(writes_create_the_directory_and_replace_atomically,
                        files_fixture) {
  BOOST_REQUIRE(!fs->make_dirs(dir + "/a/b", 0755));
  BOOST_REQUIRE(!fs->write_atomic(dir + "/a/b", "p.col", "one", 0644));
  BOOST_REQUIRE(!fs->write_atomic(dir + "/a/b", "p.col", "two", 0644));
  BOOST_CHECK_EQUAL(read_file(dir + "/a/b/p.col"), "two");
  auto entries = fs->list(dir + "/a/b", "");
  BOOST_REQUIRE(entries);
  BOOST_CHECK_EQUAL(entries->size(), 1u); // no temporaries left
  struct stat st {};
  BOOST_REQUIRE_EQUAL(::stat((dir + "/a/b/p.col").c_str(), &st), 0);
  BOOST_CHECK_EQUAL(st.st_mode & 0777, 0644u);
}

BOOST_FIXTURE_TEST_CASE(planted_symlinks_are_replaced_not_followed,
                        files_fixture) {
  BOOST_REQUIRE(!fs->make_dirs(dir, 0755));
  // Someone plants links where the agent writes its profile and its
  // last_profile.col link.
  BOOST_REQUIRE_EQUAL(::symlink(victim.c_str(), (dir + "/p.col").c_str()), 0);
  BOOST_REQUIRE_EQUAL(
      ::symlink(victim.c_str(), (dir + "/last_profile.col").c_str()), 0);
  BOOST_REQUIRE(!fs->write_atomic(dir, "p.col", "profile", 0644));
  BOOST_REQUIRE(!fs->link_atomic(dir, "p.col", "last_profile.col"));
  BOOST_CHECK_EQUAL(read_file(victim), "precious");
  BOOST_CHECK_EQUAL(read_file(dir + "/p.col"), "profile");
  char target[64] = {};
  BOOST_REQUIRE_GT(
      ::readlink((dir + "/last_profile.col").c_str(), target, sizeof(target)),
      0);
  BOOST_CHECK_EQUAL(std::string{target}, "p.col");
}

BOOST_FIXTURE_TEST_CASE(a_symlinked_directory_is_refused, files_fixture) {
  BOOST_REQUIRE_EQUAL(::symlink(temp.path().c_str(), dir.c_str()), 0);
  auto err = fs->make_dirs(dir, 0755);
  BOOST_REQUIRE(err);
  BOOST_CHECK_NE(describe(err).find("symlink"), std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(reading_refuses_symlinks_and_names_the_file,
                        files_fixture) {
  auto link = temp.path() + "/link";
  BOOST_REQUIRE_EQUAL(::symlink(victim.c_str(), link.c_str()), 0);
  auto err = fs->read_chunks(
      link, [](std::string_view) {}, 1024);
  BOOST_REQUIRE(err);
  BOOST_CHECK_NE(describe(err).find(link), std::string::npos);
  std::string got;
  BOOST_REQUIRE(!fs->read_chunks(
      victim,
      [&](std::string_view chunk) {
        got.append(chunk);
      },
      3));
  BOOST_CHECK_EQUAL(got, "precious");
}

BOOST_FIXTURE_TEST_CASE(unwritable_directory_is_a_clear_error, files_fixture) {
  auto err = fs->write_atomic("/proc/self", "p.col", "x", 0644);
  BOOST_REQUIRE(err);
  BOOST_CHECK_NE(describe(err).find("/proc/self"), std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(log_file_refuses_planted_symlinks, files_fixture) {
  auto logs = temp.path() + "/logs";
  BOOST_REQUIRE_EQUAL(::mkdir(logs.c_str(), 0700), 0);
  log_options opts;
  opts.file = logs + "/agent.log";
  opts.rotate_max_size = 200;
  opts.rotate_backup_count = 2;
  // A link at the log file itself: refused, naming the link, as unsafe.
  auto link = logs + "/agent.log";
  BOOST_REQUIRE_EQUAL(::symlink(victim.c_str(), link.c_str()), 0);
  bool unsafe = false;
  auto err = log::setup(opts, &unsafe);
  BOOST_CHECK_NE(err.find(link + ": it is a symbolic link"), std::string::npos);
  BOOST_CHECK(unsafe);
  log::get("files-test")->warn("must not reach the victim");
  BOOST_CHECK_EQUAL(read_file(victim), "precious");
  BOOST_REQUIRE_EQUAL(::unlink(link.c_str()), 0);
  // A link at a rotated backup's name: never written through, never moved
  // (rotation stops, the file grows).
  auto backup = logs + "/agent.2.log";
  BOOST_REQUIRE_EQUAL(::symlink(victim.c_str(), backup.c_str()), 0);
  BOOST_CHECK_EQUAL(log::setup(opts), "");
  for (int i = 0; i < 10; ++i)
    log::get("files-test")->warn("to the file {}", i);
  BOOST_CHECK_NE(read_file(opts.file).find("to the file 9"), std::string::npos);
  BOOST_CHECK_EQUAL(read_file(victim), "precious");
  struct stat st {};
  BOOST_CHECK(::lstat(backup.c_str(), &st) == 0 && S_ISLNK(st.st_mode));
  log::silence();
}

BOOST_FIXTURE_TEST_CASE(input_files_are_regular_files_within_a_limit,
                        files_fixture) {
  // A regular file: read whole, or in chunks.
  auto text = rt::read_input_file(victim, 100);
  BOOST_REQUIRE(text);
  BOOST_CHECK_EQUAL(*text, "precious");
  std::string got;
  size_t calls = 0;
  BOOST_CHECK(!rt::read_input_chunks(
      victim, 100,
      [&](std::string_view chunk) {
        got.append(chunk);
        ++calls;
        return true;
      },
      3));
  BOOST_CHECK_EQUAL(got, "precious");
  BOOST_CHECK_GE(calls, 1u);
  // Over the limit: refused before reading, with both sizes.
  auto big = rt::read_input_file(victim, 5);
  BOOST_REQUIRE(!big);
  BOOST_CHECK_NE(describe(big.error()).find("larger than the limit of 5 bytes"),
                 std::string::npos);
  BOOST_CHECK_NE(describe(big.error()).find("(8 bytes)"), std::string::npos);
  BOOST_CHECK(rt::read_input_chunks(victim, 5, [](std::string_view) {
    return true;
  }));
  // Files of /proc say they are empty: read whole all the same; one longer
  // than the limit as it is read is refused.
  auto status = rt::read_input_file("/proc/self/status", 1 << 20);
  BOOST_REQUIRE(status);
  BOOST_CHECK_NE(status->find("VmRSS:"), std::string::npos);
  BOOST_CHECK(!rt::read_input_file("/proc/self/status", 16));
  // A device, a FIFO (no writer: opening must not block), a directory, a
  // missing file: refused at once, naming the path and what it is.
  auto fifo = temp.path() + "/fifo";
  BOOST_REQUIRE_EQUAL(::mkfifo(fifo.c_str(), 0600), 0);
  std::pair<std::string, std::string> cases[]
      = {{"/dev/zero", "a character device"},
         {fifo, "a FIFO"},
         {temp.path(), "a directory"},
         {temp.path() + "/missing", "No such file"}};
  for (auto& [path, what] : cases) {
    auto r = rt::read_input_file(path, 1 << 20);
    BOOST_REQUIRE(!r);
    auto msg = message_of(r.error());
    BOOST_CHECK_MESSAGE(
        msg.find("cannot read '" + path + "'") != std::string::npos, msg);
    BOOST_CHECK_MESSAGE(msg.find(what) != std::string::npos, msg);
    BOOST_CHECK(rt::read_input_chunks(path, 1 << 20, [](std::string_view) {
      return true;
    }));
    BOOST_CHECK(!rt::open_input_fd(path, 1 << 20));
  }
  // Stopping early.
  calls = 0;
  BOOST_CHECK(!rt::read_input_chunks(
      victim, 100,
      [&](std::string_view) {
        ++calls;
        return false;
      },
      2));
  BOOST_CHECK_EQUAL(calls, 1u);
}

BOOST_AUTO_TEST_SUITE_END()
