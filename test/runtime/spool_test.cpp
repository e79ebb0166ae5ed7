// The spool on a real file system: permissions, order across reopen,
// bounds, crash leftovers, and no symlink ever followed.

#include <boost/test/unit_test.hpp>

#include <fstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/process_env.hpp"
#include "runtime/spool.hpp"

using namespace gpa;

namespace {

struct spool_fixture {
  rt::private_temp_dir temp{"/tmp"};
  std::string dir = temp.path() + "/a/b/spool";

  std::shared_ptr<rt::spool> open(rt::spool_limits lim = {}) {
    auto sp = rt::spool::open(dir, lim);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(sp),
                          (sp ? std::string{} : describe(sp.error())));
    return *sp;
  }

  static mode_t mode_of(const std::string& path) {
    struct stat st;
    BOOST_REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
  }

  std::vector<std::string> contents(rt::spool& sp) {
    std::vector<std::string> result;
    for (auto& e : sp.list())
      result.push_back(*sp.read(e));
    return result;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(spool)

BOOST_FIXTURE_TEST_CASE(created_private_and_files_0600, spool_fixture) {
  auto sp = open();
  BOOST_CHECK_EQUAL(mode_of(dir), 0700u);
  auto r = sp->push("one");
  BOOST_REQUIRE(r);
  BOOST_CHECK_EQUAL(r->entry.name(), "00000000000000000001.prof");
  BOOST_CHECK_EQUAL(mode_of(dir + "/" + r->entry.name()), 0600u);
  // An existing directory with loose permissions is tightened.
  ::chmod(dir.c_str(), 0755);
  sp.reset();
  open();
  BOOST_CHECK_EQUAL(mode_of(dir), 0700u);
}

BOOST_FIXTURE_TEST_CASE(oldest_first_across_reopen, spool_fixture) {
  {
    auto sp = open();
    for (auto x : {"a", "b", "c"})
      BOOST_REQUIRE(sp->push(x));
    sp->remove(*sp->oldest());
  }
  auto sp = open();
  BOOST_CHECK_EQUAL(sp->count(), 2u);
  BOOST_CHECK_EQUAL(sp->bytes(), 2u);
  BOOST_REQUIRE(sp->push("d"));
  BOOST_CHECK((contents(*sp) == std::vector<std::string>{"b", "c", "d"}));
  // The sequence continued after the highest name: d is newest.
  BOOST_CHECK_EQUAL(sp->list().back().seq, 4u);
}

BOOST_FIXTURE_TEST_CASE(bounds_drop_the_oldest, spool_fixture) {
  rt::spool_limits lim;
  lim.max_files = 3;
  lim.max_bytes = 10;
  auto sp = open(lim);
  for (auto x : {"1", "2", "3"})
    BOOST_CHECK_EQUAL(sp->push(x)->dropped, 0u);
  auto r = sp->push("4");
  BOOST_REQUIRE(r);
  BOOST_CHECK_EQUAL(r->dropped, 1u);
  BOOST_CHECK((contents(*sp) == std::vector<std::string>{"2", "3", "4"}));
  // 3 bytes held; a 9-byte entry makes 12 > 10: the two oldest go.
  r = sp->push("123456789");
  BOOST_REQUIRE(r);
  BOOST_CHECK_EQUAL(r->dropped, 2u);
  BOOST_CHECK((contents(*sp) == std::vector<std::string>{"4", "123456789"}));
  BOOST_CHECK_EQUAL(sp->bytes(), 10u);
  // Too large alone: refused, nothing lost.
  BOOST_CHECK(!sp->push("12345678901"));
  BOOST_CHECK_EQUAL(sp->count(), 2u);
}

BOOST_FIXTURE_TEST_CASE(holds_at_least_one_entry, spool_fixture) {
  // The spool is the write-ahead log of every upload: it cannot be off.
  rt::spool_limits lim;
  lim.max_files = 0;
  auto sp = open(lim);
  BOOST_REQUIRE(sp->push("x"));
  auto r = sp->push("y");
  BOOST_REQUIRE(r);
  BOOST_CHECK_EQUAL(r->dropped, 1u);
  BOOST_CHECK((contents(*sp) == std::vector<std::string>{"y"}));
}

BOOST_FIXTURE_TEST_CASE(names_beyond_the_sequence_range_never_wrap,
                        spool_fixture) {
  // 2^64 is 18446744073709551616: a 20-digit name above it used to wrap to
  // a small number, so the entry read and removed was not this file, and
  // the file stayed forever. Such names are removed at open.
  open()->push("kept");
  for (auto name : {"/99999999999999999999.prof", "/18446744073709551617.prof",
                    "/10000000000000000000.prof", "/00000000000000000000.prof"})
    std::ofstream{dir + name} << "planted";
  auto sp = open();
  BOOST_CHECK_EQUAL(sp->count(), 1u);
  BOOST_CHECK((contents(*sp) == std::vector<std::string>{"kept"}));
  for (auto name : {"/99999999999999999999.prof", "/18446744073709551617.prof",
                    "/10000000000000000000.prof", "/00000000000000000000.prof"})
    BOOST_CHECK(::access((dir + name).c_str(), F_OK) != 0);
  BOOST_CHECK_EQUAL(sp->list().back().seq, 1u);
}

BOOST_FIXTURE_TEST_CASE(the_end_of_the_sequence_renumbers_in_order,
                        spool_fixture) {
  {
    auto sp = open();
    sp->push("a");
  }
  // The highest valid number, as if 10^19 profiles had gone through.
  std::ofstream{dir + "/09999999999999999999.prof"} << "b";
  auto sp = open();
  BOOST_REQUIRE(sp->push("c"));
  BOOST_CHECK((contents(*sp) == std::vector<std::string>{"a", "b", "c"}));
  BOOST_CHECK_EQUAL(sp->list().back().seq, 3u);
  auto again = open();
  BOOST_CHECK((contents(*again) == std::vector<std::string>{"a", "b", "c"}));
}

BOOST_FIXTURE_TEST_CASE(crash_leftovers_removed_foreign_files_kept,
                        spool_fixture) {
  open()->push("kept");
  std::ofstream{dir + "/.tmp.00000000000000000002.prof"} << "half";
  std::ofstream{dir + "/README"} << "not ours";
  auto sp = open();
  BOOST_CHECK_EQUAL(sp->count(), 1u);
  BOOST_CHECK(::access((dir + "/.tmp.00000000000000000002.prof").c_str(), F_OK)
              != 0);
  BOOST_CHECK(::access((dir + "/README").c_str(), F_OK) == 0);
}

BOOST_FIXTURE_TEST_CASE(no_symlink_is_followed, spool_fixture) {
  auto victim = temp.path() + "/victim";
  std::ofstream{victim} << "precious";
  // The spool directory itself a symlink: refused.
  auto link_dir = temp.path() + "/linked";
  BOOST_REQUIRE(::symlink(temp.path().c_str(), link_dir.c_str()) == 0);
  auto bad = rt::spool::open(link_dir, {});
  BOOST_REQUIRE(!bad);
  BOOST_CHECK(describe(bad.error()).find("symlink") != std::string::npos);
  // A symlink planted at the next temporary name: the write fails (the
  // entry is kept in memory, not durable), the target is untouched.
  auto sp = open();
  BOOST_REQUIRE(::symlink(victim.c_str(),
                          (dir + "/.tmp.00000000000000000001.prof").c_str())
                == 0);
  auto r = sp->push("attack");
  BOOST_REQUIRE(r);
  BOOST_CHECK(!r->durable);
  BOOST_CHECK_EQUAL(*sp->read(r->entry), "attack");
  std::ifstream in{victim};
  std::string text;
  std::getline(in, text);
  BOOST_CHECK_EQUAL(text, "precious");
  // A symlink under an entry's name is never read as an entry.
  BOOST_REQUIRE(
      ::symlink(victim.c_str(), (dir + "/00000000000000000009.prof").c_str())
      == 0);
  BOOST_CHECK_EQUAL(open()->count(), 0u);
}

BOOST_FIXTURE_TEST_CASE(unwritable_spool_is_an_error_not_a_crash,
                        spool_fixture) {
  auto sp = open();
  // A file where the directory should be.
  auto file = temp.path() + "/file";
  std::ofstream{file} << "x";
  auto bad = rt::spool::open(file, {});
  BOOST_REQUIRE(!bad);
  BOOST_CHECK(describe(bad.error()).find(file) != std::string::npos);
  // Writes into a read-only directory fail with the path and a hint (root
  // ignores modes, so make the file system object unwritable differently:
  // replace the directory under the open spool by removing it).
  rt::remove_tree(dir);
  auto r = sp->push("x");
  BOOST_REQUIRE(r);
  BOOST_CHECK(!r->durable);
  BOOST_CHECK(r->not_durable_because.find(dir) != std::string::npos);
  // Kept in memory, so that it is still sent; removing it frees it.
  BOOST_CHECK_EQUAL(sp->in_memory_count(), 1u);
  BOOST_CHECK_EQUAL(*sp->read(r->entry), "x");
  BOOST_CHECK(!sp->remove(r->entry));
  BOOST_CHECK_EQUAL(sp->count(), 0u);
}

BOOST_FIXTURE_TEST_CASE(memory_kept_entries_are_bounded, spool_fixture) {
  rt::spool_limits lim;
  lim.max_memory_bytes = 4;
  auto sp = open(lim);
  rt::remove_tree(dir);
  BOOST_REQUIRE(sp->push("abc"));
  auto r = sp->push("de");
  BOOST_REQUIRE(!r);
  BOOST_CHECK(describe(r.error()).find("used up") != std::string::npos);
  BOOST_CHECK_EQUAL(sp->count(), 1u);
}

BOOST_AUTO_TEST_CASE(memory_spool_keeps_order_and_bounds) {
  rt::spool_limits lim;
  lim.max_files = 2;
  auto sp = rt::spool::in_memory(lim, "test");
  BOOST_CHECK(!sp->on_disk());
  for (auto x : {"a", "b", "c"}) {
    auto r = sp->push(x);
    BOOST_REQUIRE(r);
    BOOST_CHECK(!r->durable);
  }
  BOOST_CHECK_EQUAL(sp->count(), 2u);
  BOOST_CHECK_EQUAL(*sp->read(*sp->oldest()), "b");
}

BOOST_AUTO_TEST_SUITE_END()
