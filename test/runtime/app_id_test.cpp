// App ids and application metadata as gProfiler builds them: golden command
// lines (test/data/app_ids.json), hostile /proc contents in a fake /proc
// tree, and real processes (this test, /bin/sleep, python3, node, java).

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <signal.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format/json.hpp"
#include "runtime/app_id.hpp"
#include "runtime/process_env.hpp"

using namespace gpa;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

/// mkdir -p.
void make_dirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i)
    if (i == path.size() || path[i] == '/')
      ::mkdir(path.substr(0, i).c_str(), 0755);
}

std::string dir_of(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

rt::app_runtime runtime_named(const std::string& name) {
  for (auto r : {rt::app_runtime::python, rt::app_runtime::java,
                 rt::app_runtime::ruby, rt::app_runtime::node})
    if (name == rt::app_runtime_name(r))
      return r;
  return rt::app_runtime::none;
}

std::vector<std::string> strings(const rapidjson::Value& v) {
  std::vector<std::string> out;
  for (auto& s : v.GetArray())
    out.emplace_back(s.GetString(), s.GetStringLength());
  return out;
}

/// A child process that is killed and reaped at scope exit.
struct child {
  pid_t pid = -1;
  explicit child(std::vector<std::string> argv, const std::string& cwd = "",
                 bool quiet = true) {
    std::fflush(nullptr); // the child must not flush our buffered output
    pid = ::fork();
    if (pid == 0) {
      if (!cwd.empty() && ::chdir(cwd.c_str()) != 0)
        ::_exit(126);
      if (quiet) {
        ::freopen("/dev/null", "w", stdout);
        ::freopen("/dev/null", "w", stderr);
      }
      std::vector<char*> args;
      for (auto& a : argv)
        args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  void kill_and_reap() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~child() {
    kill_and_reap();
  }
};

/// Waits until /proc/<pid>/exe points at something whose name contains
/// `what` (the child has exec'ed).
bool wait_exec(pid_t pid, const std::string& what) {
  for (int i = 0; i < 200; ++i) {
    char buf[4096];
    auto path = "/proc/" + std::to_string(pid) + "/exe";
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n > 0
        && std::string(buf, static_cast<size_t>(n)).find(what)
               != std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

/// A string literal with its NULs.
template <size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

bool executable(const std::string& path) {
  return ::access(path.c_str(), X_OK) == 0;
}

/// A fake /proc/<pid> directory: tests write what the kernel would show.
struct fake_proc {
  rt::private_temp_dir temp{"/tmp"};
  std::string proc = temp.path() + "/proc";
  int32_t pid = 4242;
  std::string dir = proc + "/" + std::to_string(pid);
  std::string files = temp.path() + "/files";

  fake_proc() {
    make_dirs(dir);
    make_dirs(files);
    write_file(dir + "/comm", "comm\n");
    write_file(dir + "/maps", "");
  }
  void cmdline(const std::string& raw) {
    write_file(dir + "/cmdline", raw);
  }
  void maps(const std::string& text) {
    write_file(dir + "/maps", text);
  }
  /// /proc/PID/exe as a link to a file with these bytes.
  void exe(const std::string& bytes, const std::string& name = "prog") {
    write_file(files + "/" + name, bytes);
    ::unlink((dir + "/exe").c_str());
    BOOST_REQUIRE(
        ::symlink((files + "/" + name).c_str(), (dir + "/exe").c_str()) == 0);
  }
  /// auxv with AT_EXECFN at `addr` (if nonzero) and mem holding `fn` there.
  void execfn(const std::string& fn, unsigned long addr = 8192,
              bool with_entry = true) {
    std::string auxv;
    auto entry = [&auxv](unsigned long k, unsigned long v) {
      auxv.append(reinterpret_cast<const char*>(&k), sizeof k);
      auxv.append(reinterpret_cast<const char*>(&v), sizeof v);
    };
    entry(6, 4096); // AT_PAGESZ
    if (with_entry)
      entry(31, addr);
    entry(0, 0);
    write_file(dir + "/auxv", auxv);
    write_file(dir + "/mem", std::string(addr, 'x') + fn + '\0');
  }
};

std::string elf_header(unsigned char cls, unsigned char data,
                       unsigned machine) {
  std::string h(64, '\0');
  std::memcpy(h.data(),
              "\x7f"
              "ELF",
              4);
  h[4] = static_cast<char>(cls);
  h[5] = static_cast<char>(data);
  h[6] = 1;
  if (data == 1) {
    h[18] = static_cast<char>(machine & 0xff);
    h[19] = static_cast<char>(machine >> 8);
  } else {
    h[18] = static_cast<char>(machine >> 8);
    h[19] = static_cast<char>(machine & 0xff);
  }
  return h;
}

} // namespace

BOOST_AUTO_TEST_SUITE(app_id_golden)

// Every case of the fixture: the command line, cwd, files and symlinks under
// the process's root, environment and options give gProfiler's app id.
BOOST_AUTO_TEST_CASE(fixture_command_lines) {
  rapidjson::Document doc;
  auto text = slurp(std::string{GPA_TEST_DATA_DIR} + "/app_ids.json");
  BOOST_REQUIRE_EQUAL(format::parse_json(doc, text), "");
  auto& cases = doc["cases"];
  BOOST_REQUIRE_GT(cases.Size(), 100u);
  size_t n = 0;
  for (auto& c : cases.GetArray()) {
    rt::private_temp_dir root{"/tmp"};
    rt::process_facts p;
    p.pid = 4242;
    p.root = root.path();
    p.cmdline = strings(c["cmdline"]);
    p.cwd = c.HasMember("cwd") ? c["cwd"].GetString() : "/my/dir";
    p.runtime = runtime_named(c["runtime"].GetString());
    if (c.HasMember("environ"))
      p.environ = strings(c["environ"]);
    if (c.HasMember("files"))
      for (auto& f : c["files"].GetObject()) {
        std::string path = root.path() + f.name.GetString();
        make_dirs(dir_of(path));
        write_file(path, f.value.GetString());
      }
    if (c.HasMember("links"))
      for (auto& l : c["links"].GetObject()) {
        std::string path = root.path() + l.name.GetString();
        make_dirs(dir_of(path));
        BOOST_REQUIRE(::symlink(l.value.GetString(), path.c_str()) == 0);
      }
    rt::app_id_options o;
    if (c.HasMember("args_filter"))
      o.args_filter = strings(c["args_filter"]);
    o.java_spark_app_name = c.HasMember("spark") && c["spark"].GetBool();
    o.python = !c.HasMember("python") || c["python"].GetBool();
    o.java = !c.HasMember("java") || c["java"].GetBool();
    o.ruby = !c.HasMember("ruby") || c["ruby"].GetBool();
    std::vector<std::string> notes;
    auto got = rt::app_id_from(p, o, &notes);
    std::string shown;
    for (auto& a : p.cmdline)
      shown += "[" + a + "]";
    BOOST_TEST_INFO("case " << n << " " << c["from"].GetString() << ": "
                            << shown);
    BOOST_CHECK_EQUAL(got, c["expected"].GetString());
    ++n;
  }
  BOOST_TEST_MESSAGE(n << " golden app ids");
}

// The JVM arguments gProfiler filters, and the command, as the java launcher
// hands them to the VM.
BOOST_AUTO_TEST_CASE(java_launcher_translation) {
  auto cl = rt::parse_java_command_line(
      {"java", "-verbosegc", "-mx512m", "-Djava.class.path=x",
       "-Dsun.java.launcher.diag=true", "-XshowSettings:vm", "-splash:s.png",
       "--add-opens=java.base/java.lang=ALL-UNNAMED", "--class-path=a:b",
       "Main", "-Xmx1g"},
      {});
  std::vector<std::string> want = {
      "-verbose:gc", "-Xmx512m", "--add-opens=java.base/java.lang=ALL-UNNAMED"};
  BOOST_CHECK_EQUAL_COLLECTIONS(cl.jvm_args.begin(), cl.jvm_args.end(),
                                want.begin(), want.end());
  BOOST_CHECK_EQUAL(cl.command, "Main");
  // Quotes group words in the option variables.
  cl = rt::parse_java_command_line(
      {"java", "-jar", "a.jar"},
      {"JAVA_TOOL_OPTIONS=-Da='x y' \"-Db=z\"", "JAVA_TOOL_OPTIONSX=-Dno=1"});
  want = {"-Da=x y", "-Db=z"};
  BOOST_CHECK_EQUAL_COLLECTIONS(cl.jvm_args.begin(), cl.jvm_args.end(),
                                want.begin(), want.end());
  BOOST_CHECK_EQUAL(cl.command, "a.jar");
  // Nothing after the options: no command.
  BOOST_CHECK_EQUAL(rt::parse_java_command_line({"java", "-cp"}, {}).command,
                    "");
  BOOST_CHECK_EQUAL(rt::parse_java_command_line({}, {}).command, "");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(app_id_hostile)

// /proc/PID/cmdline split as psutil splits it.
BOOST_AUTO_TEST_CASE(cmdline_split_like_psutil) {
  fake_proc f;
  f.cmdline(lit("python3\0-m\0http.server\0"));
  auto p = rt::read_process_facts(f.pid, f.proc);
  BOOST_REQUIRE(p);
  std::vector<std::string> want = {"python3", "-m", "http.server"};
  BOOST_CHECK_EQUAL_COLLECTIONS(p->cmdline.begin(), p->cmdline.end(),
                                want.begin(), want.end());
  BOOST_CHECK_EQUAL(p->comm, "comm");
  BOOST_CHECK(!p->cmdline_truncated);
  // A rewritten title without NULs is split on spaces.
  f.cmdline("gunicorn: master [app:app]");
  p = rt::read_process_facts(f.pid, f.proc);
  want = {"gunicorn:", "master", "[app:app]"};
  BOOST_CHECK_EQUAL_COLLECTIONS(p->cmdline.begin(), p->cmdline.end(),
                                want.begin(), want.end());
  // One NUL at the end but spaces inside: psutil splits on spaces.
  f.cmdline(lit("nginx: worker process\0"));
  p = rt::read_process_facts(f.pid, f.proc);
  want = {"nginx:", "worker", "process"};
  BOOST_CHECK_EQUAL_COLLECTIONS(p->cmdline.begin(), p->cmdline.end(),
                                want.begin(), want.end());
  // setproctitle's NUL padding keeps the empty arguments.
  f.cmdline(lit("gunicorn: worker [a:b]\0\0\0"));
  p = rt::read_process_facts(f.pid, f.proc);
  BOOST_CHECK_EQUAL(p->cmdline.size(), 3u);
  p->runtime = rt::app_runtime::python;
  p->cwd = "/w";
  p->root = f.files;
  BOOST_CHECK_EQUAL(rt::app_id_from(*p, {}), "gunicorn: a:b (/w/a.py)");
  // The agent and its children (perf links libpython) get nothing.
  f.cmdline(lit("python3\0-m\0http.server\0"));
  write_file(f.dir + "/stat",
             "4242 (python3) S 77 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 "
             "20 0 1 0 1000 10000000 2000 18446744073709551615 1 1 0 0 0 0 "
             "0 16781312 2 0 0 0 17 1 0 0 0 0 0\n");
  p = rt::read_process_facts(f.pid, f.proc);
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->ppid, 77);
  p->runtime = rt::app_runtime::python;
  rt::app_id_options agent;
  BOOST_CHECK_EQUAL(rt::app_id_from(*p, agent), "python: -m http.server");
  agent.agent_pid = 77;
  BOOST_CHECK_EQUAL(rt::app_id_from(*p, agent), "");
  agent.agent_pid = 4242;
  BOOST_CHECK_EQUAL(rt::app_id_from(*p, agent), "");
  agent.agent_pid = 78;
  BOOST_CHECK_EQUAL(rt::app_id_from(*p, agent), "python: -m http.server");
  // Empty (zombie, kernel thread): no arguments.
  f.cmdline("");
  p = rt::read_process_facts(f.pid, f.proc);
  BOOST_REQUIRE(p);
  BOOST_CHECK(p->cmdline.empty());
  BOOST_CHECK_EQUAL(rt::app_id_from(*p, {}), "");
}

// A huge cmdline is cut at the bound; invalid UTF-8, newlines and control
// characters pass through as bytes and never crash an identifier.
BOOST_AUTO_TEST_CASE(huge_and_binary_cmdlines) {
  fake_proc f;
  std::string huge
      = lit("python3\0") + std::string(1 << 20, 'a') + lit("\0-m\0x\0");
  f.cmdline(huge);
  auto p = rt::read_process_facts(f.pid, f.proc);
  BOOST_REQUIRE(p);
  BOOST_CHECK(p->cmdline_truncated);
  BOOST_CHECK_EQUAL(p->cmdline.size(), 2u);
  BOOST_CHECK_LE(p->cmdline[1].size(), rt::max_cmdline_bytes);
  p->runtime = rt::app_runtime::python;
  BOOST_CHECK_EQUAL(rt::app_id_from(*p, {}), "");

  std::string binary = lit("python3\0-m\0\xff\xfe;\n\x01mod\0");
  f.cmdline(binary);
  p = rt::read_process_facts(f.pid, f.proc);
  p->runtime = rt::app_runtime::python;
  BOOST_CHECK_EQUAL(rt::app_id_from(*p, {}), "python: -m \xff\xfe;\n\x01mod");

  // Every identifier on arguments made of separators and nothing.
  for (auto rt_ : {rt::app_runtime::python, rt::app_runtime::java,
                   rt::app_runtime::ruby, rt::app_runtime::node}) {
    rt::process_facts q;
    q.root = f.files;
    q.cwd = "/";
    q.runtime = rt_;
    for (auto args :
         std::vector<std::vector<std::string>>{{},
                                               {""},
                                               {"", "", ""},
                                               {"gunicorn", ":"},
                                               {"uwsgi", "--ini"},
                                               {"uwsgi", "x.ini"},
                                               {"celery", "-A"},
                                               {"celery", "--app="},
                                               {"java", "-jar"},
                                               {"java", "--module="},
                                               {"node", "-r"},
                                               {"ruby", "-r"},
                                               {"python", "/"},
                                               {"python", "..py"},
                                               {"node", "/../../../.js"}}) {
      q.cmdline = args;
      rt::app_id_options o;
      o.args_filter = {"(a|b)*c", "["}; // the second is no valid regex
      o.java_spark_app_name = true;
      (void)rt::app_id_from(q, o); // must not throw or crash
    }
  }
}

// The runtime comes from /proc/PID/maps as gProfiler's profilers select
// their processes; the Python blacklist applies.
BOOST_AUTO_TEST_CASE(runtime_from_maps) {
  fake_proc f;
  f.cmdline(lit("app\0"));
  auto runtime = [&f] {
    auto p = rt::read_process_facts(f.pid, f.proc);
    BOOST_REQUIRE(p);
    return std::string{rt::app_runtime_name(p->runtime)};
  };
  BOOST_CHECK_EQUAL(runtime(), "none");
  f.maps("55d0 r-xp 00000000 08:01 1 /usr/bin/python3.11\n");
  BOOST_CHECK_EQUAL(runtime(), "python");
  f.maps("7f00 r-xp 00000000 08:01 1 /usr/lib/libpython3.11.so.1.0\n");
  BOOST_CHECK_EQUAL(runtime(), "python");
  f.maps("7f00 r-xp 0 08:01 1 /venv/lib/python3.11/site-packages/x.so\n");
  BOOST_CHECK_EQUAL(runtime(), "python");
  f.maps("7f00 r-xp 0 08:01 1 /venv/lib/python3.11/site-packages/\n");
  BOOST_CHECK_EQUAL(runtime(), "none"); // nothing after the directory
  f.maps("7f00 r-xp 0 08:01 1 /usr/lib/jvm/java-17/lib/server/libjvm.so\n"
         "7f01 r-xp 0 08:01 1 /usr/lib/libpython3.11.so\n");
  BOOST_CHECK_EQUAL(runtime(), "java");
  f.maps("55d0 r-xp 0 08:01 1 /usr/bin/ruby3.1\n");
  BOOST_CHECK_EQUAL(runtime(), "ruby");
  f.maps("55d0 r-xp 0 08:01 1 /usr/lib/libruby-3.1.so\n"); // not /ruby...
  BOOST_CHECK_EQUAL(runtime(), "none");
  f.cmdline(lit("/usr/bin/node\0server.js\0"));
  f.maps("55d0 r-xp 0 08:01 1 /usr/bin/node\n");
  BOOST_CHECK_EQUAL(runtime(), "node");
  // gProfiler's Python blacklist.
  f.cmdline(lit("/usr/bin/python3\0/usr/bin/unattended-upgrades\0"));
  f.maps("55d0 r-xp 0 08:01 1 /usr/bin/python3.11\n");
  BOOST_CHECK_EQUAL(runtime(), "none");
  // A maps file with no newline at the end and a very long line.
  f.cmdline(lit("x\0"));
  f.maps(std::string(200000, 'z') + "\n55d0 r-xp 0 0:0 1 /opt/python");
  BOOST_CHECK_EQUAL(runtime(), "python");
}

// A pid that is not there: no facts, no id, no metadata.
BOOST_AUTO_TEST_CASE(gone_process) {
  fake_proc f;
  BOOST_CHECK(!rt::read_process_facts(999999, f.proc));
  BOOST_CHECK_EQUAL(rt::app_id_of(999999, {}, f.proc), "");
  BOOST_CHECK(!rt::read_application_metadata(999999, f.proc));
  BOOST_CHECK_EQUAL(rt::application_metadata_json(999999, f.proc), "");
}

// exe, execfn and arch from a fake /proc, with gProfiler's error strings.
BOOST_AUTO_TEST_CASE(metadata_fields_and_errors) {
  fake_proc f;
  f.cmdline(lit("prog\0"));
  f.exe(elf_header(2, 1, 62));
  f.execfn("/usr/local/bin/prog");
  auto m = rt::read_application_metadata(f.pid, f.proc);
  BOOST_REQUIRE(m);
  BOOST_CHECK_EQUAL(m->exe, f.files + "/prog");
  BOOST_CHECK_EQUAL(m->execfn, "/usr/local/bin/prog");
  BOOST_CHECK_EQUAL(m->arch, "x86_64");

  f.exe(elf_header(2, 1, 183));
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->arch,
                    "aarch64");
  f.exe(elf_header(2, 2, 183)); // big-endian header
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->arch,
                    "aarch64");
  f.exe(elf_header(1, 1, 3)); // i386: not in gProfiler's map
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->arch,
                    "error: KeyError");
  f.exe("#!/bin/sh\necho hi\n");
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->arch,
                    "error: ELFError");
  f.exe(elf_header(2, 1, 62).substr(0, 30));
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->arch,
                    "error: ELFParseError");
  f.exe(elf_header(3, 1, 62));
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->arch,
                    "error: ELFError");

  f.execfn(lit("/bin/\xff\xfe"));
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->execfn,
                    "error: UnicodeDecodeError");
  f.execfn("", 8192, false);
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->execfn,
                    "error: ValueError");
  // No NUL within PATH_MAX bytes.
  f.execfn(std::string(5000, 'a'));
  auto mem = slurp(f.dir + "/mem");
  write_file(f.dir + "/mem", mem.substr(0, mem.size() - 1)); // drop the NUL
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->execfn,
                    "error: ValueError");

  // An exe that is no link (readlink fails): psutil's guess from an
  // absolute argv[0].
  ::unlink((f.dir + "/exe").c_str());
  write_file(f.dir + "/exe", elf_header(2, 1, 62));
  f.execfn("/bin/sh");
  f.cmdline(lit("/bin/sh\0"));
  m = rt::read_application_metadata(f.pid, f.proc);
  BOOST_REQUIRE(m);
  BOOST_CHECK_EQUAL(m->exe, "/bin/sh");
  f.cmdline(lit("sh\0"));
  BOOST_CHECK_EQUAL(rt::read_application_metadata(f.pid, f.proc)->exe,
                    "error: MissingExePath");

  // An empty auxv: the process exited (zombie): no metadata.
  f.exe(elf_header(2, 1, 62));
  write_file(f.dir + "/auxv", "");
  BOOST_CHECK(!rt::read_application_metadata(f.pid, f.proc));
  BOOST_CHECK_EQUAL(rt::application_metadata_json(f.pid, f.proc), "");
}

// The JSON object as Python's json.dumps(ensure_ascii) writes it: every
// byte outside printable ASCII escaped, invalid UTF-8 as surrogateescape.
BOOST_AUTO_TEST_CASE(metadata_json_escaping) {
  rt::application_metadata m;
  m.exe = "/opt/caf\xc3\xa9/\"q\"\\\n\x7f";
  m.execfn = lit("/bin/\xff\x80");
  m.arch = "x\xf0\x9f\x98\x80";
  BOOST_CHECK_EQUAL(rt::to_json(m),
                    "{\"exe\":\"/opt/caf\\u00e9/\\\"q\\\"\\\\\\n\\u007f\","
                    "\"execfn\":\"/bin/\\udcff\\udc80\","
                    "\"arch\":\"x\\ud83d\\ude00\"}");
  rapidjson::Document doc;
  BOOST_CHECK_EQUAL(format::parse_json(doc, rt::to_json(m)), "");
  BOOST_CHECK(rt::records_application_metadata(rt::app_runtime::node, {}));
  BOOST_CHECK(!rt::records_application_metadata(rt::app_runtime::none, {}));
  rt::app_id_options no_python;
  no_python.python = false;
  BOOST_CHECK(
      !rt::records_application_metadata(rt::app_runtime::python, no_python));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(app_id_real)

// This test process: exe is /proc/self/exe, execfn what the kernel put in
// AT_EXECFN (read here through getauxval), arch the machine's.
BOOST_AUTO_TEST_CASE(metadata_of_this_process) {
  auto m = rt::read_application_metadata(::getpid());
  BOOST_REQUIRE(m);
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf);
  BOOST_REQUIRE_GT(n, 0);
  BOOST_CHECK_EQUAL(m->exe, std::string(buf, static_cast<size_t>(n)));
  auto execfn = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
  BOOST_REQUIRE(execfn);
  BOOST_CHECK_EQUAL(m->execfn, execfn);
  struct utsname u;
  ::uname(&u);
  BOOST_CHECK_EQUAL(m->arch, u.machine);
  BOOST_CHECK_EQUAL(rt::application_metadata_json(::getpid()), rt::to_json(*m));
}

// /bin/sleep: exec'ed as /bin/sleep (execfn) but its exe is the resolved
// file (/usr/bin/sleep on merged-/usr systems); gone after it is reaped.
BOOST_AUTO_TEST_CASE(metadata_of_sleep) {
  child c({"/bin/sleep", "30"});
  BOOST_REQUIRE(wait_exec(c.pid, "sleep"));
  auto m = rt::read_application_metadata(c.pid);
  BOOST_REQUIRE(m);
  char real[PATH_MAX];
  BOOST_REQUIRE(::realpath("/bin/sleep", real));
  BOOST_CHECK_EQUAL(m->exe, real);
  BOOST_CHECK_EQUAL(m->execfn, "/bin/sleep");
  struct utsname u;
  ::uname(&u);
  BOOST_CHECK_EQUAL(m->arch, u.machine);
  auto json = rt::application_metadata_json(c.pid);
  BOOST_CHECK_EQUAL(json, "{\"exe\":\"" + std::string{real}
                              + "\",\"execfn\":\"/bin/sleep\",\"arch\":\""
                              + u.machine + "\"}");
  // gProfiler records none for a native process only perf profiles.
  BOOST_CHECK_EQUAL(rt::application_metadata_of(c.pid, {}), "");
  // A zombie (killed, not reaped) has no metadata.
  ::kill(c.pid, SIGKILL);
  for (int i = 0; i < 200; ++i) {
    auto stat = slurp("/proc/" + std::to_string(c.pid) + "/stat");
    if (stat.find(") Z") != std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BOOST_CHECK_EQUAL(rt::application_metadata_json(c.pid), "");
  int pid = c.pid;
  c.kill_and_reap();
  BOOST_CHECK_EQUAL(rt::application_metadata_json(pid), "");
  BOOST_CHECK(!rt::read_process_facts(pid));
}

// A real python3 running a script from its cwd: detected as Python from its
// maps, app id with the script's path.
BOOST_AUTO_TEST_CASE(python_script_app_id) {
  std::string python = "/usr/bin/python3";
  if (!executable(python)) {
    BOOST_TEST_MESSAGE("no /usr/bin/python3: skipped");
    return;
  }
  rt::private_temp_dir dir{"/tmp"};
  write_file(dir.path() + "/idle.py", "import time\ntime.sleep(30)\n");
  child c({python, "idle.py"}, dir.path());
  BOOST_REQUIRE(wait_exec(c.pid, "python"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto p = rt::read_process_facts(c.pid);
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(rt::app_runtime_name(p->runtime), "python");
  char real[PATH_MAX];
  BOOST_REQUIRE(::realpath(dir.path().c_str(), real));
  BOOST_CHECK_EQUAL(p->cwd, real);
  BOOST_CHECK_EQUAL(rt::app_id_of(c.pid, {}),
                    "python: idle.py (" + std::string{real} + "/idle.py)");
  auto m = rt::read_application_metadata(c.pid);
  BOOST_REQUIRE(m);
  BOOST_CHECK_EQUAL(m->execfn, python);
  BOOST_CHECK_EQUAL(rt::application_metadata_of(c.pid, {}), rt::to_json(*m));
  rt::app_id_options no_python;
  no_python.python = false;
  BOOST_CHECK_EQUAL(rt::application_metadata_of(c.pid, no_python), "");
  BOOST_CHECK_EQUAL(rt::app_id_of(c.pid, no_python), "");
}

// A real node script.
BOOST_AUTO_TEST_CASE(node_script_app_id) {
  std::string node = "/usr/bin/node";
  if (!executable(node)) {
    BOOST_TEST_MESSAGE("no /usr/bin/node: skipped");
    return;
  }
  rt::private_temp_dir dir{"/tmp"};
  write_file(dir.path() + "/server.js", "setTimeout(() => {}, 30000);\n");
  child c({node, "server.js"}, dir.path());
  BOOST_REQUIRE(wait_exec(c.pid, "node"));
  auto p = rt::read_process_facts(c.pid);
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(rt::app_runtime_name(p->runtime), "node");
  char real[PATH_MAX];
  BOOST_REQUIRE(::realpath(dir.path().c_str(), real));
  BOOST_CHECK_EQUAL(rt::app_id_of(c.pid, {}),
                    "nodejs: server.js (" + std::string{real} + "/server.js)");
}

// Our reading of a java command line against what the JVM itself reports
// (`jcmd PID VM.command_line`, which gProfiler reads through jattach).
BOOST_AUTO_TEST_CASE(java_command_line_matches_jcmd) {
  std::string jdk = "/usr/lib/jvm/java-17-openjdk-amd64/bin";
  if (!executable(jdk + "/javac") || !executable(jdk + "/jcmd")) {
    BOOST_TEST_MESSAGE("no OpenJDK 17 javac/jcmd: skipped");
    return;
  }
  rt::private_temp_dir dir{"/tmp"};
  write_file(dir.path() + "/Idle.java",
             "public class Idle { public static void main(String[] a) throws "
             "Exception { Thread.sleep(60000); } }\n");
  write_file(dir.path() + "/manifest.txt", "Main-Class: Idle\n");
  auto sh = [&](const std::string& cmd) {
    child c({"/bin/sh", "-c", cmd}, dir.path());
    int status = 0;
    ::waitpid(c.pid, &status, 0);
    c.pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  BOOST_REQUIRE_EQUAL(sh("mkdir mods && " + jdk + "/javac -d . Idle.java && "
                         + jdk + "/jar cfm idle.jar manifest.txt Idle.class"),
                      0);
  std::vector<std::string> argv
      = {jdk + "/java", "-Xmx64m",  "-cp",  "/tmp",  "-server",
         "-ea",         "-p",       "mods", "-Dx=1", "-verbosegc",
         "-jar",        "idle.jar", "arg1", "arg 2"};
  child c(argv, dir.path());
  BOOST_REQUIRE(wait_exec(c.pid, "java"));
  std::string out = dir.path() + "/jcmd.txt";
  int rc = -1;
  for (int i = 0; i < 40 && rc != 0; ++i) {
    rc = sh(jdk + "/jcmd " + std::to_string(c.pid)
            + " VM.command_line > jcmd.txt 2>&1");
    if (rc != 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  BOOST_REQUIRE_EQUAL(rc, 0);
  std::string jvm_args, java_command;
  std::istringstream lines(slurp(out));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("jvm_args:", 0) == 0)
      jvm_args = line.substr(line.find(':') + 1);
    if (line.rfind("java_command:", 0) == 0)
      java_command = line.substr(line.find(':') + 1);
  }
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(' '));
    s.erase(s.find_last_not_of(' ') + 1);
    return s;
  };
  auto p = rt::read_process_facts(c.pid, "/proc", true);
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(rt::app_runtime_name(p->runtime), "java");
  auto cl = rt::parse_java_command_line(p->cmdline, p->environ);
  std::string ours;
  for (auto& a : cl.jvm_args)
    ours += (ours.empty() ? "" : " ") + a;
  BOOST_CHECK_EQUAL(ours, trim(jvm_args));
  auto first = trim(java_command);
  BOOST_CHECK_EQUAL(cl.command, first.substr(0, first.find(' ')));
  rt::app_id_options o;
  o.args_filter = {"^-Xmx", "^-D"};
  BOOST_CHECK_EQUAL(rt::app_id_of(c.pid, o), "java: idle.jar (-Xmx64m -Dx=1)");
}

BOOST_AUTO_TEST_SUITE_END()
