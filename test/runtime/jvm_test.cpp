// What the Java profiler reads about a JVM (runtime/jvm.*): `VM.flags -all`
// text (a real JDK 17 capture and JDK 8's format) against flags computed in
// Python with granulate_utils' own regular expression and gProfiler's filters
// (test/data/runtime/jvm/make_expected.py); --java-collect-jvm-flags;
// `java -version` texts; ELF ids; a JVM's facts from a fake /proc, with a
// link that tries to leave the process's root; and the real /proc.

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "runtime/jvm.hpp"
#include "runtime/proc.hpp"

using namespace gpa::rt;
namespace fs = std::filesystem;

namespace {

const std::string data_dir = GPA_TEST_DATA_DIR "/runtime/jvm/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  return s;
}

std::string selected(const std::string& fixture, const std::string& option) {
  return jvm_flags_json(
      select_jvm_flags(parse_jvm_flags(slurp(data_dir + fixture)),
                       parse_jvm_flags_selection(option)));
}

/// A scratch directory removed at the end.
struct scratch {
  fs::path dir;
  scratch() {
    char tmpl[] = "/tmp/gpa-jvm-test-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void write(const fs::path& rel, const std::string& text) {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel, std::ios::binary) << text;
  }
};

const char* jdk17_version = "openjdk version \"17.0.15\" 2025-04-15\n"
                            "OpenJDK Runtime Environment (build "
                            "17.0.15+6-Debian-1deb12u1)\n"
                            "OpenJDK 64-Bit Server VM (build "
                            "17.0.15+6-Debian-1deb12u1, mixed mode, sharing)\n";

} // namespace

BOOST_AUTO_TEST_SUITE(jvm_golden)

BOOST_AUTO_TEST_CASE(flags_of_a_real_jdk17_as_gprofiler_chooses_them) {
  auto fixture = "vm_flags_all_jdk17_jattach.txt";
  for (auto [option, expected] :
       {std::pair{"default", "vm_flags_all_jdk17_jattach.default.json"},
        std::pair{"all", "vm_flags_all_jdk17_jattach.all.json"},
        std::pair{"MaxHeapSize,UseG1GC, NoSuchFlag",
                  "vm_flags_all_jdk17_jattach.list.json"}}) {
    BOOST_TEST_CONTEXT(option) {
      BOOST_CHECK_EQUAL(selected(fixture, option),
                        trimmed(slurp(data_dir + expected)));
    }
  }
  // The default choice of a JVM started without options: what ergonomics
  // set, not the platform-dependent (pd) or manageable ones.
  auto defaults = selected(fixture, "default");
  BOOST_CHECK_NE(defaults.find("{\"name\":\"UseG1GC\",\"type\":\"bool\","
                               "\"value\":\"true\",\"origin\":\"ergonomic\","
                               "\"kind\":[\"product\"]}"),
                 std::string::npos);
  BOOST_CHECK_EQUAL(defaults.find("ReservedCodeCacheSize"), std::string::npos);
  BOOST_CHECK_EQUAL(defaults.find("SoftMaxHeapSize"), std::string::npos);
  BOOST_CHECK_EQUAL(selected(fixture, "none"), "[]");
  BOOST_CHECK_EQUAL(selected(fixture, ""), "[]");
}

BOOST_AUTO_TEST_CASE(flags_of_jdk8s_format) {
  for (auto [option, expected] :
       {std::pair{"default", "vm_flags_jdk8.default.json"},
        std::pair{"all", "vm_flags_jdk8.all.json"}})
    BOOST_CHECK_EQUAL(selected("vm_flags_jdk8.txt", option),
                      trimmed(slurp(data_dir + expected)));
}

BOOST_AUTO_TEST_CASE(elf_ids_of_files_with_and_without_a_build_id) {
  std::istringstream ids(slurp(data_dir + "elf_ids.txt"));
  std::string name, id;
  int n = 0;
  while (ids >> name >> id) {
    int fd = ::open((data_dir + name).c_str(), O_RDONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    auto got = elf_id_of_fd(fd);
    ::close(fd);
    BOOST_TEST_CONTEXT(name) {
      BOOST_REQUIRE(got);
      BOOST_CHECK_EQUAL(*got, id);
    }
    ++n;
  }
  BOOST_CHECK_EQUAL(n, 2);
}

BOOST_AUTO_TEST_CASE(java_version_texts) {
  auto v = parse_jvm_version(jdk17_version);
  BOOST_REQUIRE(v);
  BOOST_CHECK((v->version == std::vector<uint64_t>{17, 0, 15}));
  BOOST_CHECK_EQUAL(v->build, 6u);
  BOOST_CHECK_EQUAL(v->vm_name, "OpenJDK 64-Bit Server VM");
  BOOST_CHECK_EQUAL(v->vm_type, "HotSpot");
  BOOST_CHECK_EQUAL(jvm_unsupported_reason(*v), "");
  BOOST_CHECK_EQUAL(java_version_text(std::string{"\n  "} + jdk17_version),
                    trimmed(jdk17_version));

  // granulate_utils' example, after a line the launcher may print first.
  auto v8 = parse_jvm_version(
      "Picked up JAVA_TOOL_OPTIONS: -Xmx1g\n"
      "openjdk version \"1.8.0_265\"\n"
      "OpenJDK Runtime Environment (AdoptOpenJDK)(build 1.8.0_265-b01)\n"
      "OpenJDK 64-Bit Server VM (AdoptOpenJDK)(build 25.265-b01, mixed "
      "mode)\n");
  BOOST_REQUIRE(v8);
  BOOST_CHECK((v8->version == std::vector<uint64_t>{8, 265}));
  BOOST_CHECK_EQUAL(v8->build, 1u);
  BOOST_CHECK_EQUAL(v8->vm_name, "OpenJDK 64-Bit Server VM");

  auto v6 = parse_jvm_version(
      "java version \"1.6.0_45\"\n"
      "Java(TM) SE Runtime Environment (build 1.6.0_45-b06)\n"
      "Java HotSpot(TM) 64-Bit Server VM (build 20.45-b01, mixed mode)\n");
  BOOST_REQUIRE(v6);
  BOOST_CHECK_EQUAL(v6->vm_type, "HotSpot");
  BOOST_CHECK_EQUAL(jvm_unsupported_reason(*v6), "unsupported HotSpot version");

  auto zing = parse_jvm_version(
      "java version \"1.8.0-zing_20.03.0.0\"\n"
      "Zing Runtime Environment for Java Applications (build "
      "1.8.0-zing_20.03.0.0-b1)\n"
      "Zing 64-Bit Tiered VM (build 1.8.0-zing_20.03.0.0-b1-product-azlinux-"
      "M1, mixed mode)\n");
  BOOST_REQUIRE(zing);
  BOOST_CHECK_EQUAL(zing->vm_type, "Zing");
  BOOST_CHECK((zing->zing_version == std::vector<uint64_t>{20, 3, 0}));
  BOOST_CHECK_EQUAL(jvm_unsupported_reason(*zing),
                    "unsupported Zing VM version");
  auto zing22 = parse_jvm_version(
      "java version \"11.0.15\" 2022-04-19 LTS\n"
      "Java Runtime Environment Zing22.04.0.0+3 (build 11.0.15+4-LTS)\n"
      "Zing 64-Bit Tiered VM Zing22.04.0.0+3 (build 11.0.15-zing_22.04.0.0-"
      "b3-product-linux-X86_64, mixed mode)\n");
  BOOST_REQUIRE(zing22);
  BOOST_CHECK((zing22->zing_version == std::vector<uint64_t>{22, 4, 0}));
  BOOST_CHECK_EQUAL(jvm_unsupported_reason(*zing22), "");

  std::string why;
  BOOST_CHECK(!parse_jvm_version("no version here", &why));
  BOOST_CHECK_NE(why, "");
  BOOST_CHECK(!parse_jvm_version("openjdk version 17\nx\ny", &why));
  BOOST_CHECK(!parse_jvm_version("openjdk version \"17\"\nno build\n", &why));
}

BOOST_AUTO_TEST_CASE(the_metadata_members) {
  BOOST_CHECK_EQUAL(java_metadata_fields("openjdk \"17\"\n\xc3\xa9",
                                         std::string{"buildid:ab"}, "[]"),
                    "\"java_version\":\"openjdk \\\"17\\\"\\n\\u00e9\","
                    "\"libjvm_elfid\":\"buildid:ab\",\"jvm_flags\":[]");
  BOOST_CHECK_EQUAL(java_metadata_fields("/java not found", std::nullopt,
                                         "\"error CalledProcessError\""),
                    "\"java_version\":\"/java not found\",\"libjvm_elfid\":"
                    "null,\"jvm_flags\":\"error CalledProcessError\"");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(jvm_rules)

BOOST_AUTO_TEST_CASE(flag_lines_as_granulate_utils_reads_them) {
  auto flags = parse_jvm_flags(
      "12:\r\n"
      "[Global flags]\r\n"
      "     bool UseG1GC                = true      {product} {ergonomic}\r\n"
      // An empty value is not a flag (the pattern wants one after "= ").
      "    ccstr ErrorFile              =           {product} {default}\n"
      // Two origins in one: the greedy group takes up to the last brace.
      "   size_t MaxHeapSize            = 1073741824 {product} {command line, "
      "ergonomic}\n"
      // JDK 8's ":=" is "non-default" whatever follows.
      "     intx CICompilerCount       := 3 {product} {ergonomic}\n"
      "\tbool\tTabs\t=\tfalse {product}\n" // "=" then a tab: no match
      "     bool Kinds                 = false {  C2   pd product  }\n"
      "garbage } { = \n"
      "     bool NoKinds               = false {}\n"
      "     bool Empty                 = false {}}\n");
  BOOST_REQUIRE_EQUAL(flags.size(), 5u);
  BOOST_CHECK_EQUAL(flags[0].name, "UseG1GC");
  BOOST_CHECK_EQUAL(flags[0].origin, "ergonomic");
  BOOST_CHECK_EQUAL(flags[1].name, "MaxHeapSize");
  BOOST_CHECK_EQUAL(flags[1].origin, "command line, ergonomic");
  BOOST_CHECK_EQUAL(flags[2].origin, "non-default");
  BOOST_CHECK_EQUAL(flags[3].name, "Kinds");
  BOOST_CHECK(
      (flags[3].kind == std::vector<std::string>{"C2", "pd", "product"}));
  BOOST_CHECK_EQUAL(flags[3].origin, "default");
  // "{}}": the kind is "}" (at least one character before the brace).
  BOOST_CHECK_EQUAL(flags[4].name, "Empty");
  BOOST_CHECK((flags[4].kind == std::vector<std::string>{"}"}));
}

BOOST_AUTO_TEST_CASE(hostile_flag_text_is_bounded) {
  std::string text(1 << 20, 'x');
  text += "\n bool A = true {product} {ergonomic}\n";
  text += " bool " + std::string(8000, 'B') + " = true {product}\n";
  auto flags = parse_jvm_flags(text);
  BOOST_REQUIRE_EQUAL(flags.size(), 1u);
  BOOST_CHECK_EQUAL(flags[0].name, "A");
  BOOST_CHECK(parse_jvm_flags(std::string(1 << 16, '{')).empty());
  BOOST_CHECK(parse_jvm_flags(std::string("\0\0= \0", 5)).empty());
}

BOOST_AUTO_TEST_CASE(the_option_and_missing_names) {
  using mode = jvm_flags_selection::mode;
  BOOST_CHECK(parse_jvm_flags_selection("").what == mode::none);
  BOOST_CHECK(parse_jvm_flags_selection("none").what == mode::none);
  BOOST_CHECK(parse_jvm_flags_selection("all").what == mode::all);
  BOOST_CHECK(parse_jvm_flags_selection("default").what == mode::defaults);
  auto list = parse_jvm_flags_selection(" UseG1GC , MaxHeapSize,Nope");
  BOOST_CHECK(list.what == mode::list);
  BOOST_CHECK((list.names
               == std::vector<std::string>{"UseG1GC", "MaxHeapSize", "Nope"}));
  std::vector<std::string> missing;
  auto got = select_jvm_flags(
      parse_jvm_flags(slurp(data_dir + "vm_flags_all_jdk17_jattach.txt")), list,
      &missing);
  BOOST_REQUIRE_EQUAL(got.size(), 2u);
  BOOST_CHECK_EQUAL(got[0].name, "MaxHeapSize");
  BOOST_CHECK_EQUAL(got[1].name, "UseG1GC");
  BOOST_CHECK((missing == std::vector<std::string>{"Nope"}));
  // A listed flag that gProfiler never records (a manageable one).
  select_jvm_flags(
      parse_jvm_flags(slurp(data_dir + "vm_flags_all_jdk17_jattach.txt")),
      parse_jvm_flags_selection("SoftMaxHeapSize"), &missing);
  BOOST_CHECK((missing == std::vector<std::string>{"SoftMaxHeapSize"}));
}

BOOST_AUTO_TEST_CASE(a_jvms_java_executable_under_a_fake_proc) {
  scratch s;
  auto stat_line = [](int pid, uint64_t start) {
    std::string l = std::to_string(pid) + " (java) S 1";
    for (int i = 5; i <= 21; ++i)
      l += " 0";
    return l + " " + std::to_string(start) + " 0 0\n";
  };
  // pid 40: started as `java`: its own exe, in its PID namespace.
  s.write("proc/40/stat", stat_line(40, 777));
  s.write("proc/40/status", "Name:\tjava\nUid:\t1000\t1001\t1001\t1001\n"
                            "Gid:\t50\t51\t51\t51\nNSpid:\t40\t7\n");
  s.write("proc/40/cmdline", std::string("java\0-jar\0app.jar\0", 18));
  s.write("bin/realjava", "#!/bin/true\n");
  fs::create_symlink(s.dir / "bin/realjava", s.dir / "proc/40/exe");
  auto p = read_jvm_process(40, (s.dir / "proc").string());
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->start_time, 777u);
  BOOST_CHECK_EQUAL(p->uid, 1001u);
  BOOST_CHECK_EQUAL(p->gid, 51u);
  BOOST_CHECK_EQUAL(p->nspid, 7);
  BOOST_CHECK_EQUAL(p->java, "/proc/7/exe");
  BOOST_CHECK_NE(p->java_key, "");

  // pid 41: an embedded JVM: the java beside its libjvm.so, in its root.
  s.write("proc/41/stat", stat_line(41, 888));
  s.write("proc/41/status", "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n");
  s.write("proc/41/cmdline", std::string("/usr/bin/myapp\0", 15));
  s.write("proc/41/maps",
          "7f0000000000-7f0000001000 r-xp 00000000 08:01 1 /usr/bin/myapp\n"
          "7f0000100000-7f0000200000 r-xp 00000000 08:01 2 "
          "/opt/jdk/lib/server/libjvm.so\n");
  fs::create_directories(s.dir / "proc/41/root/opt/jdk/lib/server");
  s.write("proc/41/root/opt/jdk/bin/java", "");
  fs::permissions(s.dir / "proc/41/root/opt/jdk/bin/java",
                  fs::perms::owner_all);
  p = read_jvm_process(41, (s.dir / "proc").string());
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->java, "/opt/jdk/bin/java");
  auto key = p->java_key;
  BOOST_CHECK_NE(key, "");
  // Another executable: another identity.
  s.write("proc/41/root/opt/jdk/bin/java", "changed");
  BOOST_CHECK_NE(read_jvm_process(41, (s.dir / "proc").string())->java_key,
                 key);

  // An executable that is a link out of the process's root is not followed
  // out of it; not executable: not found either.
  fs::remove(s.dir / "proc/41/root/opt/jdk/bin/java");
  s.write("outside/java", "");
  fs::permissions(s.dir / "outside/java", fs::perms::owner_all);
  fs::create_symlink(s.dir / "outside/java",
                     s.dir / "proc/41/root/opt/jdk/bin/java");
  p = read_jvm_process(41, (s.dir / "proc").string());
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->java, "");
  fs::remove(s.dir / "proc/41/root/opt/jdk/bin/java");
  s.write("proc/41/root/opt/jdk/bin/java", "");
  fs::permissions(s.dir / "proc/41/root/opt/jdk/bin/java",
                  fs::perms::owner_read);
  BOOST_CHECK_EQUAL(read_jvm_process(41, (s.dir / "proc").string())->java, "");
  // The lib/<arch>/server layout of older JDKs.
  s.write("proc/41/maps", "7f0000100000-7f0000200000 r-xp 00000000 08:01 2 "
                          "/jre/lib/amd64/server/libjvm.so (deleted)\n");
  s.write("proc/41/root/jre/bin/java", "");
  fs::permissions(s.dir / "proc/41/root/jre/bin/java", fs::perms::owner_all);
  BOOST_CHECK_EQUAL(read_jvm_process(41, (s.dir / "proc").string())->java,
                    "/jre/bin/java");

  // Gone, or a stat that is not one: nothing.
  BOOST_CHECK(!read_jvm_process(42, (s.dir / "proc").string()));
  s.write("proc/43/stat", "garbage");
  BOOST_CHECK(!read_jvm_process(43, (s.dir / "proc").string()));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(jvm_real)

BOOST_AUTO_TEST_CASE(this_process_and_its_libc) {
  auto p = read_jvm_process(::getpid());
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->nspid, ::getpid());
  BOOST_CHECK_EQUAL(p->uid, ::geteuid());
  BOOST_CHECK_EQUAL(p->gid, ::getegid());
  BOOST_CHECK_EQUAL(p->java, ""); // no libjvm.so here
  proc_stat st;
  std::ifstream in("/proc/self/stat");
  std::stringstream ss;
  ss << in.rdbuf();
  BOOST_REQUIRE(parse_proc_stat(ss.str(), st));
  BOOST_CHECK_EQUAL(p->start_time, st.start_time);
  // Debian builds libc with a build id.
  auto id = mapped_elf_id(::getpid(), "/libc.so");
  BOOST_REQUIRE(id);
  BOOST_CHECK_EQUAL(id->substr(0, 8), "buildid:");
  BOOST_CHECK_EQUAL(id->size(), 8u + 40u);
  BOOST_CHECK(!mapped_elf_id(::getpid(), "/libjvm"));
}

BOOST_AUTO_TEST_SUITE_END()
