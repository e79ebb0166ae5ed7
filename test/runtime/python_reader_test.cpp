// The CPython stack reader (runtime/python_reader): its line-table decoders
// on the tables of a real code object as each interpreter compiled it
// (test/data/python_line_tables.json, from gen_python_line_tables.py), its
// offset table against the compiler's offsetof() on each interpreter's
// headers, the stacks of real interpreters (3.7-3.13 from pyenv and
// Debian's python3, those installed) running
// test/support/python_stacks_target.py, and its faults: a process that is
// not Python, an old Python, a target killed while sampled, fake process
// images (test/support/fake_python.cpp), and FDs and RSS over 10,000
// samples.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <mutex>

#include <spdlog/spdlog.h>

#include "format/json.hpp"
#include "runtime/log.hpp"
#include "runtime/process_enricher.hpp"
#include "runtime/python_collector.hpp"
#include "runtime/python_reader.hpp"

using namespace gpa;
using namespace gpa::rt;

namespace gpa::rt {

std::ostream& operator<<(std::ostream& out, python_errc x) {
  return out << to_string(x);
}

} // namespace gpa::rt

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

/// A child process with its stdout on a pipe; killed when destroyed.
struct child {
  pid_t pid = -1;
  std::string first_line;

  child(std::vector<std::string> argv) {
    int fds[2];
    BOOST_REQUIRE(::pipe(fds) == 0);
    pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> args;
      for (auto& a : argv)
        args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      _exit(127);
    }
    ::close(fds[1]);
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n')
      first_line += c;
    ::close(fds[0]);
  }
  void kill() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~child() {
    kill();
  }
};

struct interpreter {
  std::string path;
  int minor;
  std::string include;
};

/// The interpreters on this machine: pyenv's 3.7-3.13 and /usr/bin/python3.
std::vector<interpreter> interpreters() {
  std::vector<interpreter> out;
  const char* root = "/root/.pyenv/versions";
  if (DIR* d = ::opendir(root)) {
    std::vector<std::string> names;
    while (auto* e = ::readdir(d))
      names.push_back(e->d_name);
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (auto& n : names) {
      int ma = 0, mi = 0, pa = 0;
      if (sscanf(n.c_str(), "%d.%d.%d", &ma, &mi, &pa) != 3 || ma != 3
          || mi < 7)
        continue;
      std::string dir = std::string(root) + "/" + n;
      std::string bin = dir + "/bin/python3." + std::to_string(mi);
      std::string inc = dir + "/include/python3." + std::to_string(mi)
                        + (mi == 7 ? "m" : "");
      if (::access(bin.c_str(), X_OK) == 0)
        out.push_back({bin, mi, inc});
    }
  }
  if (::access("/usr/bin/python3.11", X_OK) == 0)
    out.push_back({"/usr/bin/python3.11", 11,
                   ::access("/usr/include/python3.11/Python.h", R_OK) == 0
                       ? "/usr/include/python3.11"
                       : ""});
  return out;
}

const std::string target_py = GPA_TEST_SUPPORT_DIR "/python_stacks_target.py";

/// "# @name" markers of the target script -> line numbers.
std::map<std::string, int32_t> markers() {
  std::map<std::string, int32_t> out;
  std::istringstream in(slurp(target_py));
  std::string line;
  for (int32_t n = 1; std::getline(in, line); ++n) {
    auto at = line.find("# @");
    if (at != std::string::npos)
      out[line.substr(at + 3)] = n;
  }
  return out;
}

struct expected_frame {
  std::string name;
  std::string qualname;
  std::string file_suffix;
  int32_t line; // 0: any
};

std::string show(const python_thread_stack& t) {
  std::string s;
  for (auto& f : t.frames)
    s += f.name() + "@" + f.file() + ":" + std::to_string(f.line) + " | ";
  return s;
}

void check_stack(const python_thread_stack& t,
                 const std::vector<expected_frame>& want, int minor,
                 const std::string& what) {
  BOOST_TEST_CONTEXT(what << ": " << show(t)) {
    BOOST_REQUIRE_EQUAL(t.frames.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      auto& f = t.frames[i];
      BOOST_TEST(f.name() == want[i].name);
      if (minor >= 11)
        BOOST_TEST(f.code->qualname == want[i].qualname);
      else
        BOOST_TEST(f.code->qualname.empty());
      auto& file = f.file();
      BOOST_TEST((file.size() >= want[i].file_suffix.size()
                  && file.compare(file.size() - want[i].file_suffix.size(),
                                  std::string::npos, want[i].file_suffix)
                         == 0),
                 file << " ends with " << want[i].file_suffix);
      if (want[i].line != 0)
        BOOST_TEST(f.line == want[i].line);
      else
        BOOST_TEST(f.line > 0);
    }
  }
}

size_t open_fds() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d))
      ++n;
    ::closedir(d);
  }
  return n;
}

long rss_kb() {
  std::istringstream in(slurp("/proc/self/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, 6, "VmRSS:") == 0)
      return std::stol(line.substr(6));
  return -1;
}

} // namespace

// -- unit
// ----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(python_line_tables)

BOOST_AUTO_TEST_CASE(tables_of_real_code_objects_give_the_interpreters_lines) {
  auto text = slurp(GPA_TEST_DATA_DIR "/python_line_tables.json");
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  BOOST_REQUIRE(doc.IsArray());
  BOOST_REQUIRE_EQUAL(doc.Size(), 7u); // 3.7 .. 3.13
  for (auto& e : doc.GetArray()) {
    std::string version = e["version"].GetString();
    auto table = unhex(e["table"].GetString());
    auto first = e["first_line"].GetInt();
    int minor = std::stoi(version.substr(2));
    size_t checked = 0;
    for (auto& pair : e["lines"].GetArray()) {
      int64_t offset = pair[0].GetInt64();
      int32_t want = pair[1].GetInt();
      int32_t got = minor <= 9    ? python_line_lnotab(table, first, offset)
                    : minor == 10 ? python_line_310(table, first, offset)
                                  : python_line_location(table, first, offset);
      BOOST_TEST(got == want, version << " offset " << offset);
      ++checked;
    }
    BOOST_TEST(checked > 50u);
  }
}

BOOST_AUTO_TEST_CASE(hostile_tables_stay_in_bounds) {
  // Truncated varints, entries without the start bit, odd lengths.
  std::string bad[]
      = {std::string("\xf0", 1), std::string("\xf0\xff\xff", 3),
         std::string("\x01\x02\x03", 3), std::string(1000, '\xff')};
  for (auto& t : bad) {
    BOOST_TEST(python_line_location(t, 1, 4) >= 0);
    python_line_310(t, 1, 4);
    python_line_lnotab(t, 1, 4);
  }
  BOOST_TEST(python_line_location("", 7, 0) == 0);
  BOOST_TEST(python_line_lnotab("", 7, 10) == 7);
}

BOOST_AUTO_TEST_CASE(str_kinds_decode_to_utf8) {
  const unsigned char latin1[] = {'a', 0xe9, 'z'};
  BOOST_TEST(python_decode_ucs(latin1, 3, 1, 100) == "a\xc3\xa9z");
  const uint16_t ucs2[] = {0x3b1, 0x20ac};
  BOOST_TEST(
      python_decode_ucs(reinterpret_cast<const unsigned char*>(ucs2), 2, 2, 100)
      == "\xce\xb1\xe2\x82\xac");
  const uint32_t ucs4[] = {0x1f600, 0x110000, 0xd800};
  BOOST_TEST(
      python_decode_ucs(reinterpret_cast<const unsigned char*>(ucs4), 3, 4, 100)
      == "\xf0\x9f\x98\x80\xef\xbf\xbd\xef\xbf\xbd");
  BOOST_TEST(python_decode_ucs(latin1, 3, 1, 2) == "a\xc3\xa9");
}

BOOST_AUTO_TEST_SUITE_END()

// -- real
// ----------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(python_offsets_real)

BOOST_AUTO_TEST_CASE(the_table_is_what_the_headers_say) {
  size_t versions = 0;
  for (auto& py : interpreters()) {
    if (py.include.empty()
        || ::access((py.include + "/Python.h").c_str(), R_OK) != 0)
      continue;
    BOOST_TEST_CONTEXT(py.include) {
      std::string cmd = "python3 " GPA_TEST_SUPPORT_DIR
                        "/../runtime/python_offsets_probe.py "
                        + py.include + " " + std::to_string(py.minor);
      FILE* p = ::popen(cmd.c_str(), "r");
      BOOST_REQUIRE(p != nullptr);
      std::map<std::string, int64_t> probed;
      char name[128];
      long long value;
      while (fscanf(p, "%127s %lld", name, &value) == 2)
        probed[name] = value;
      BOOST_TEST(::pclose(p) == 0);
      std::vector<std::pair<std::string, int64_t>> ours;
      if (auto* t = python_table_layout(py.minor))
        ours = python_layout_fields(*t);
      else
        ours = python_debug_offsets_fields();
      std::map<std::string, int64_t> table(ours.begin(), ours.end());
      BOOST_TEST(probed.size() > 20u);
      for (auto& [k, v] : probed) {
        BOOST_TEST_CONTEXT(k) {
          BOOST_REQUIRE(table.count(k) == 1);
          BOOST_TEST(table[k] == v);
        }
      }
      for (auto& [k, v] : table)
        BOOST_TEST(probed.count(k) == 1, k << " is probed");
      ++versions;
    }
  }
  BOOST_TEST(versions >= 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(python_reader_real)

BOOST_AUTO_TEST_CASE(exact_stacks_of_every_installed_interpreter) {
  auto m = markers();
  auto pythons = interpreters();
  BOOST_REQUIRE(!pythons.empty());
  for (auto& py : pythons) {
    BOOST_TEST_CONTEXT(py.path) {
      child c({py.path, target_py});
      // The main thread prints the ready line just before it sleeps.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      rapidjson::Document ready;
      ready.Parse(c.first_line.c_str());
      BOOST_REQUIRE(ready.IsObject());
      auto r = python_reader::attach(c.pid);
      BOOST_REQUIRE_MESSAGE(r, r.error().describe());
      auto& reader = **r;
      BOOST_TEST(reader.minor() == py.minor);
      BOOST_TEST(reader.version().compare(0, 4, "3." + std::to_string(py.minor))
                 == 0);
      const std::string threading = "/threading.py";
      std::vector<expected_frame> boot
          = {{"run", "Thread.run", threading, 0},
             {"_bootstrap_inner", "Thread._bootstrap_inner", threading, 0},
             {"_bootstrap", "Thread._bootstrap", threading, 0}};
      auto with_boot = [&](std::vector<expected_frame> v) {
        v.insert(v.end(), boot.begin(), boot.end());
        return v;
      };
      const std::string script = "/python_stacks_target.py";
      auto busy = with_boot({{"leaf_a", "leaf_a", script, m["leaf_a"]},
                             {"middle_a", "middle_a", script, m["middle_a"]},
                             {"outer_a", "outer_a", script, m["outer_a"]}});
      auto sleeper
          = with_boot({{"leaf_b", "Sleeper.leaf_b", script, m["leaf_b"]},
                       {"outer_b", "outer_b", script, m["outer_b"]}});
      std::vector<expected_frame> main_stack
          = {{"main_wait", "main_wait", script, m["main_wait"]},
             {"<module>", "<module>", script, m["main"]}};
      int good = 0, busy_gil = 0;
      for (int i = 0; i < 20; ++i) {
        auto s = reader.sample();
        if (!s) {
          // Only a torn read may drop a sample of a live process.
          BOOST_TEST(s.error().code == python_errc::torn_read,
                     s.error().describe());
          continue;
        }
        ++good;
        BOOST_REQUIRE_EQUAL(s->size(), 3u);
        for (auto& t : *s) {
          std::string who;
          for (auto& [k, v] : ready.GetObject())
            if (v["ident"].GetUint64() == t.thread_id)
              who = k.GetString();
          BOOST_TEST_CONTEXT(who) {
            BOOST_REQUIRE(!who.empty());
            BOOST_TEST(t.native_tid == ready[who.c_str()]["tid"].GetInt());
            BOOST_TEST(t.gil != -1);
            BOOST_TEST(!t.truncated);
            if (who == "busy") {
              check_stack(t, busy, py.minor, who);
              busy_gil += t.gil;
            } else if (who == "sleeper") {
              check_stack(t, sleeper, py.minor, who);
              BOOST_TEST(t.gil == 0);
            } else {
              check_stack(t, main_stack, py.minor, who);
              BOOST_TEST(t.gil == 0);
            }
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      BOOST_TEST(good >= 15);
      BOOST_TEST(busy_gil >= 1);
      BOOST_TEST(reader.cached_code_objects() >= 8u);
    }
  }
}

BOOST_AUTO_TEST_CASE(fds_and_rss_stay_flat_over_10000_samples) {
  auto pythons = interpreters();
  BOOST_REQUIRE(!pythons.empty());
  child c({pythons.back().path, target_py});
  auto r = python_reader::attach(c.pid);
  BOOST_REQUIRE_MESSAGE(r, r.error().describe());
  for (int i = 0; i < 500; ++i)
    (*r)->sample();
  auto fds = open_fds();
  auto rss = rss_kb();
  int good = 0;
  for (int i = 0; i < 10000; ++i)
    good += (*r)->sample() ? 1 : 0;
  BOOST_TEST(good > 9000);
  BOOST_TEST(open_fds() == fds);
  BOOST_TEST(rss_kb() - rss < 1024, "RSS grew by " << rss_kb() - rss << " kB");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(python_reader_faults)

BOOST_AUTO_TEST_CASE(not_python_gone_and_old_pythons_are_clear_errors) {
  child sleeper({"/bin/sh", "-c", "echo ready; exec /bin/sleep 100"});
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto r = python_reader::attach(sleeper.pid);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == python_errc::not_python, r.error().describe());
  BOOST_TEST(r.error().message.find("_PyRuntime") != std::string::npos);
  sleeper.kill();
  r = python_reader::attach(sleeper.pid == -1 ? 999999999 : sleeper.pid);
  BOOST_REQUIRE(!r);
  BOOST_TEST(r.error().code == python_errc::process_gone);
  for (const char* old : {"/root/.pyenv/versions/2.7.18/bin/python2.7",
                          "/root/.pyenv/versions/3.6.15/bin/python3.6"}) {
    if (::access(old, X_OK) != 0)
      continue;
    child c({old, "-c",
             "import sys, time\nsys.stdout.write('ready\\n')\n"
             "sys.stdout.flush()\ntime.sleep(100)"});
    auto o = python_reader::attach(c.pid);
    BOOST_REQUIRE(!o);
    BOOST_TEST(o.error().code == python_errc::unsupported_version,
               o.error().describe());
  }
}

BOOST_AUTO_TEST_CASE(a_target_killed_while_sampled) {
  auto pythons = interpreters();
  BOOST_REQUIRE(!pythons.empty());
  for (auto& py : {pythons.front(), pythons.back()}) {
    child c({py.path, target_py});
    auto r = python_reader::attach(c.pid);
    BOOST_REQUIRE_MESSAGE(r, r.error().describe());
    pid_t pid = c.pid;
    std::thread killer([pid] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      ::kill(pid, SIGKILL);
    });
    int samples = 0;
    python_result<std::vector<python_thread_stack>> s = (*r)->sample();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (s && std::chrono::steady_clock::now() < deadline) {
      ++samples;
      s = (*r)->sample();
    }
    killer.join();
    BOOST_TEST(samples > 0);
    BOOST_REQUIRE(!s);
    BOOST_TEST((s.error().code == python_errc::process_gone
                || s.error().code == python_errc::torn_read),
               s.error().describe());
    // Dead (a zombie until reaped, then gone): process_gone from now on.
    s = (*r)->sample();
    BOOST_REQUIRE(!s);
    BOOST_TEST(s.error().code == python_errc::process_gone,
               s.error().describe());
    c.kill();
    s = (*r)->sample();
    BOOST_REQUIRE(!s);
    BOOST_TEST(s.error().code == python_errc::process_gone,
               s.error().describe());
  }
}

BOOST_AUTO_TEST_CASE(fake_images_are_read_or_refused_never_misread) {
  // The consistent image reads as one thread with one frame "abc".
  {
    child c({GPA_FAKE_PYTHON, "valid"});
    BOOST_REQUIRE_EQUAL(c.first_line, "ready");
    auto r = python_reader::attach(c.pid);
    BOOST_REQUIRE_MESSAGE(r, r.error().describe());
    BOOST_TEST((*r)->version() == "3.11.7");
    auto s = (*r)->sample();
    BOOST_REQUIRE_MESSAGE(s, s.error().describe());
    BOOST_REQUIRE_EQUAL(s->size(), 1u);
    BOOST_REQUIRE_EQUAL((*s)[0].frames.size(), 1u);
    BOOST_TEST((*s)[0].frames[0].name() == "abc");
  }
  // One corruption each: a torn read naming it.
  std::pair<const char*, const char*> cases[]
      = {{"cycle", "cycle"},
         {"notcode", "not code"},
         {"hugestr", "impossible length"},
         {"badinstr", "outside its code object"}};
  for (auto& [mode, why] : cases) {
    BOOST_TEST_CONTEXT(mode) {
      child c({GPA_FAKE_PYTHON, mode});
      auto r = python_reader::attach(c.pid);
      BOOST_REQUIRE_MESSAGE(r, r.error().describe());
      for (int i = 0; i < 3; ++i) {
        auto s = (*r)->sample();
        BOOST_REQUIRE(!s);
        BOOST_TEST(s.error().code == python_errc::torn_read);
        BOOST_TEST(s.error().message.find(why) != std::string::npos,
                   s.error().describe());
      }
    }
  }
  // Random words: no crash, and never a frame.
  int errors = 0, empty = 0;
  for (int seed = 1; seed <= 40; ++seed) {
    child c({GPA_FAKE_PYTHON, "random", std::to_string(seed)});
    auto r = python_reader::attach(c.pid);
    BOOST_REQUIRE_MESSAGE(r, r.error().describe());
    for (int i = 0; i < 5; ++i) {
      auto s = (*r)->sample();
      if (!s) {
        BOOST_TEST((s.error().code == python_errc::torn_read
                    || s.error().code == python_errc::not_python),
                   s.error().describe());
        ++errors;
        continue;
      }
      ++empty;
      for (auto& t : *s)
        BOOST_TEST(t.frames.empty());
    }
  }
  BOOST_TEST(errors > 0);
  BOOST_TEST_MESSAGE("random images: " << errors << " errors, " << empty
                                       << " frameless samples");
}

BOOST_AUTO_TEST_SUITE_END()

// -- the collector (runtime/python_collector) --------------------------------

namespace {

/// The line of `def name(` in the target script (py-spy -F's line).
int32_t def_line(const std::string& name) {
  std::istringstream in(slurp(target_py));
  std::string line;
  for (int32_t n = 1; std::getline(in, line); ++n)
    if (line.find("def " + name + "(") != std::string::npos)
      return n;
  return -1;
}

/// The target of process `pid`, as the agent's scan gives it.
runtime_target target_of(pid_t pid) {
  runtime_target t;
  t.pid = pid;
  auto stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto open = stat.find('(');
  auto close = stat.rfind(')');
  t.comm = stat.substr(open + 1, close - open - 1);
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  // Fields 3..22 after the comm: the 20th of them is the start time.
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22)
      t.start_time = std::stoull(field);
  return t;
}

/// Runs window `id` of `ms` milliseconds and returns what it gave.
python_window run_window(python_collector& c, uint64_t id, int ms) {
  c.begin(id, std::chrono::milliseconds(ms));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms + 50));
  std::promise<python_window> got;
  auto f = got.get_future();
  c.finish(id, [&got](python_window w) {
    got.set_value(std::move(w));
  });
  BOOST_REQUIRE(f.wait_for(std::chrono::seconds(30))
                == std::future_status::ready);
  return f.get();
}

const process_stacks* stacks_of(const python_window& w, pid_t pid) {
  for (auto& p : w.processes)
    if (p.pid == pid)
      return &p;
  return nullptr;
}

bool has_frame_run(const process_stacks& p, const std::string& run) {
  return std::any_of(p.stacks.begin(), p.stacks.end(), [&](auto& s) {
    return s.stack.find(run) != std::string::npos;
  });
}

std::string show(const process_stacks* p) {
  std::string out;
  if (p)
    for (auto& s : p->stacks)
      out += s.stack + " " + std::to_string(s.count) + "\n";
  return out;
}

std::shared_ptr<spdlog::logger> test_log() {
  return gpa::log::get("python-test");
}

} // namespace

BOOST_AUTO_TEST_SUITE(python_frames)

BOOST_AUTO_TEST_CASE(frames_as_gprofiler_writes_py_spy_frames) {
  BOOST_TEST(python_frame_text("leaf", "/srv/app.py", 12)
             == "leaf (/srv/app.py:12)_[p]");
  BOOST_TEST(python_frame_text("leaf", "/srv/app.py", 12, "pip==23.1")
             == "leaf (/srv/app.py:12 [pip==23.1])_[p]");
  // Versions go with a line only (gProfiler's "(FILE.py:LINE)" pattern).
  BOOST_TEST(python_frame_text("leaf", "/srv/app.py", 0, "pip==23.1")
             == "leaf (/srv/app.py)_[p]");
  BOOST_TEST(python_frame_text("<module>", "", 3) == "<module>_[p]");
  // What the process named its code is hostile: no ';', no newline.
  BOOST_TEST(python_frame_text("a;b\nc", "/x;y.py", 1)
             == "a_b c (/x_y.py:1)_[p]");
}

BOOST_AUTO_TEST_CASE(metadata_fields_as_gprofilers_python_metadata) {
  BOOST_TEST(
      python_metadata_fields("/usr/bin/python3.11", "3.11.2", "buildid:ab12",
                             "")
      == R"("python_version":"Python 3.11.2","exe_elfid":"buildid:ab12",)"
         R"("libpython_elfid":null,"sys_maxunicode":null)");
  BOOST_TEST(
      python_metadata_fields("/opt/venv/bin/uwsgi", "3.9.18", "", "sha1:ff")
      == R"("python_version":"Python 3.9.18","exe_elfid":null,)"
         R"("libpython_elfid":"sha1:ff","sys_maxunicode":null)");
  // gProfiler gives other executables (an embedding program) no version.
  BOOST_TEST(python_metadata_fields("/usr/bin/myapp", "3.11.2", "", "")
                 .rfind(R"("python_version":null,)", 0)
             == 0);
  BOOST_TEST(python_metadata_fields("/usr/bin/python3", "", "", "")
                 .rfind(R"("python_version":null,)", 0)
             == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(python_collector_real)

BOOST_AUTO_TEST_CASE(the_gil_holders_stacks_of_every_interpreter) {
  auto pythons = interpreters();
  BOOST_REQUIRE(!pythons.empty());
  std::vector<std::unique_ptr<child>> kids;
  std::vector<runtime_target> targets;
  for (auto& py : pythons) {
    kids.push_back(
        std::make_unique<child>(std::vector<std::string>{py.path, target_py}));
    targets.push_back(target_of(kids.back()->pid));
  }
  auto extras = std::make_shared<app_metadata_extras>();
  python_collector_config cfg;
  cfg.frequency = 100;
  python_collector c(
      cfg,
      [&] {
        return targets;
      },
      extras, test_log());
  auto w = run_window(c, 1, 1500);
  BOOST_TEST(w.id == 1u);
  BOOST_TEST(w.targets == pythons.size());
  BOOST_TEST(w.errors.empty());
  const std::string script = target_py;
  auto frame = [&](const std::string& name) {
    return name + " (" + script + ":" + std::to_string(def_line(name))
           + ")_[p]";
  };
  for (size_t i = 0; i < pythons.size(); ++i) {
    BOOST_TEST_CONTEXT(pythons[i].path) {
      auto* p = stacks_of(w, kids[i]->pid);
      BOOST_REQUIRE(p);
      BOOST_TEST(p->comm == targets[i].comm);
      // The busy thread holds the GIL: its whole chain, outermost first,
      // after the comm; the sleeping threads never hold it.
      BOOST_TEST(has_frame_run(*p, ";" + frame("outer_a") + ";"
                                       + frame("middle_a") + ";"
                                       + frame("leaf_a")),
                 show(p));
      BOOST_TEST(!has_frame_run(*p, "leaf_b"), show(p));
      BOOST_TEST(!has_frame_run(*p, "main_wait"), show(p));
      for (auto& s : p->stacks) {
        BOOST_TEST(s.stack.rfind(targets[i].comm + ";", 0) == 0);
        // The threading module's frames carry the interpreter's version.
        if (s.stack.find("/threading.py:") != std::string::npos)
          BOOST_TEST(s.stack.find(" [standard-library==3."
                                  + std::to_string(pythons[i].minor) + ".")
                         != std::string::npos,
                     s.stack);
      }
      uint64_t counted = 0;
      for (auto& s : p->stacks)
        counted += s.count;
      // 100 Hz over 1.5 s: many ticks give the holder's stack (a loaded
      // machine delays some).
      BOOST_TEST(counted >= 30u, counted);
      auto [rev, md] = extras->get(targets[i].pid, targets[i].start_time);
      BOOST_TEST(rev > 0u);
      BOOST_TEST(md.find("\"python_version\":\"Python 3."
                         + std::to_string(pythons[i].minor) + ".")
                     != std::string::npos,
                 md);
    }
  }
}

BOOST_AUTO_TEST_CASE(what_cannot_be_read_is_an_error_of_its_process) {
  std::vector<std::unique_ptr<child>> kids;
  std::vector<runtime_target> targets;
  std::vector<std::string> versions;
  // Pythons the reader does not read.
  for (auto [old, version] :
       {std::pair{"/root/.pyenv/versions/2.7.18/bin/python2.7", "2.7"},
        std::pair{"/root/.pyenv/versions/3.6.15/bin/python3.6", "3.6"}})
    if (::access(old, X_OK) == 0) {
      versions.push_back(version);
      kids.push_back(std::make_unique<child>(std::vector<std::string>{
          old, "-c",
          "import sys, time; sys.stdout.write('ready\\n'); "
          "sys.stdout.flush(); time.sleep(60)"}));
      targets.push_back(target_of(kids.back()->pid));
    }
  // Garbage where CPython's structures should be.
  kids.push_back(std::make_unique<child>(
      std::vector<std::string>{GPA_FAKE_PYTHON, "cycle"}));
  auto fake = targets.emplace_back(target_of(kids.back()->pid));
  // Not Python at all.
  kids.push_back(std::make_unique<child>(
      std::vector<std::string>{"/bin/sh", "-c", "echo ready; exec sleep 60"}));
  auto sleeper = targets.emplace_back(target_of(kids.back()->pid));
  python_collector_config cfg;
  cfg.frequency = 50;
  python_collector c(
      cfg,
      [&] {
        return targets;
      },
      nullptr, test_log());
  auto w = run_window(c, 7, 400);
  BOOST_TEST(w.processes.empty());
  auto error_of = [&](int32_t pid) -> std::string {
    for (auto& e : w.errors)
      if (e.pid == pid)
        return e.what + ": " + e.reason;
    return {};
  };
  for (size_t i = 0; i < versions.size(); ++i) {
    auto why = error_of(targets[i].pid);
    BOOST_TEST(why.find(versions[i]) != std::string::npos, why);
  }
  BOOST_TEST(error_of(fake.pid).find("could be read: ") != std::string::npos,
             error_of(fake.pid));
  BOOST_TEST(error_of(fake.pid).find("cycle") != std::string::npos,
             error_of(fake.pid));
  // Not Python after all: no error, its perf stacks stand.
  BOOST_TEST(error_of(sleeper.pid).empty(), error_of(sleeper.pid));
  BOOST_TEST(w.torn > 0u);
}

BOOST_AUTO_TEST_CASE(a_target_that_execs_keeps_the_samples_it_gave) {
  auto py = interpreters().back();
  // Busy with the GIL for 0.5 s, then another program.
  child c({py.path, "-c",
           "import os, time\n"
           "def spin_then_exec():\n"
           "    end = time.time() + 0.5\n"
           "    while time.time() < end: pass\n"
           "    os.execv('/bin/sleep', ['sleep', '30'])\n"
           "print('ready', flush=True)\n"
           "spin_then_exec()\n"});
  std::vector<runtime_target> targets{target_of(c.pid)};
  python_collector_config cfg;
  cfg.frequency = 100;
  python_collector col(
      cfg,
      [&] {
        return targets;
      },
      nullptr, test_log());
  auto w = run_window(col, 1, 1200);
  auto* p = stacks_of(w, c.pid);
  BOOST_REQUIRE_MESSAGE(p, "no stacks of the process before its exec");
  BOOST_TEST(has_frame_run(*p, "spin_then_exec (<string>:2)_[p]"), show(p));
  // Now sleep: not Python after all, nothing said the next window (its
  // perf stacks stand).
  auto w2 = run_window(col, 2, 200);
  BOOST_TEST(w2.processes.empty());
  BOOST_TEST(w2.errors.empty());
  BOOST_TEST(w2.targets == 0u);
}

BOOST_AUTO_TEST_CASE(windows_end_and_answer_in_any_order) {
  auto py = interpreters().back();
  child a({py.path, target_py});
  std::vector<runtime_target> targets{target_of(a.pid)};
  python_collector_config cfg;
  cfg.frequency = 200;
  cfg.spawn_poll = std::chrono::milliseconds(100);
  std::mutex mu;
  python_collector c(
      cfg,
      [&] {
        std::lock_guard<std::mutex> lk(mu);
        return targets;
      },
      nullptr, test_log());
  // A window never begun answers, empty.
  std::promise<python_window> got;
  c.finish(99, [&](python_window w) {
    got.set_value(std::move(w));
  });
  auto none = got.get_future().get();
  BOOST_TEST(none.id == 99u);
  BOOST_TEST(none.processes.empty());
  // A process that starts during a window joins it (spawn_poll).
  c.begin(1, std::chrono::milliseconds(1500));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  child b({py.path, target_py});
  {
    std::lock_guard<std::mutex> lk(mu);
    targets.push_back(target_of(b.pid));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  // Window 2 begins before window 1 was asked for: 1 ends there.
  c.begin(2, std::chrono::milliseconds(300));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  std::promise<python_window> p2, p1;
  c.finish(2, [&](python_window w) {
    p2.set_value(std::move(w));
  });
  c.finish(1, [&](python_window w) {
    p1.set_value(std::move(w));
  });
  auto w2 = p2.get_future().get();
  auto w1 = p1.get_future().get();
  BOOST_TEST(w1.id == 1u);
  BOOST_TEST(w2.id == 2u);
  BOOST_TEST(stacks_of(w1, a.pid) != nullptr);
  BOOST_TEST(stacks_of(w1, b.pid) != nullptr, "spawned process not sampled");
  BOOST_TEST(stacks_of(w2, a.pid) != nullptr);
  BOOST_TEST(stacks_of(w2, b.pid) != nullptr);
}

BOOST_AUTO_TEST_CASE(fds_and_rss_stay_flat_over_many_windows) {
  auto py = interpreters().back();
  child a({py.path, target_py});
  std::vector<runtime_target> targets{target_of(a.pid)};
  python_collector_config cfg;
  cfg.frequency = 1000;
  auto fds_before = open_fds();
  long rss_mid = 0;
  {
    python_collector c(
        cfg,
        [&] {
          return targets;
        },
        nullptr, test_log());
    // 10,000 reads or more: windows of 100 ms at 1000 Hz (about 100 reads
    // each on a quiet machine, fewer on a loaded one) until there are.
    uint64_t reads = 0;
    uint64_t id = 0;
    while (reads < 10000 && id < 1000) {
      reads += run_window(c, ++id, 100).reads;
      if (id == 20)
        rss_mid = rss_kb();
    }
    BOOST_TEST(reads >= 10000u, reads << " reads in " << id << " windows");
    BOOST_TEST(open_fds() <= fds_before + 1);
    BOOST_TEST(rss_kb() <= rss_mid + 2048,
               rss_kb() << " kB after, " << rss_mid << " kB at window 20");
  }
  BOOST_TEST(open_fds() == fds_before);
}

BOOST_AUTO_TEST_SUITE_END()
