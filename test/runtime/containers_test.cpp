// Containers of processes: the cgroup rule on captured /proc/PID/cgroup
// files of every layout (and hostile ones), the Docker and CRI reply
// decoders, and rt::container_names against real stand-ins on real unix
// sockets: a Docker Engine API (test/support/docker_standin.py) and a CRI
// runtime speaking gRPC over h2c (test/support/cri_standin.js).

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/sinks/ringbuffer_sink.h>

#include "runtime/containers.hpp"
#include "runtime/log.hpp"
#include "runtime/process_env.hpp"

extern char** environ;

using namespace gpa;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// Ids as runtimes make them: 64 lowercase hex digits.
const std::string id_a
    = "0b6d2bd5c8a3a4ce9dfb1d5d0f5a8d2b1c3e6f7a8b9c0d1e2f3a4b5c6d7e8f90";
const std::string id_b
    = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const std::string id_c
    = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string id_d
    = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

std::string id_in(std::string_view text) {
  return rt::container_id_from_cgroup(text);
}

// -- golden /proc/PID/cgroup files -----------------------------------------

/// Docker with the cgroupfs driver on cgroup v1 (Debian 10, Docker 20):
/// every hierarchy names the container.
std::string docker_v1_cgroupfs(const std::string& id) {
  return "12:hugetlb:/docker/" + id + "\n11:freezer:/docker/" + id
         + "\n10:perf_event:/docker/" + id + "\n9:cpu,cpuacct:/docker/" + id
         + "\n8:memory:/docker/" + id + "\n7:devices:/docker/" + id
         + "\n6:net_cls,net_prio:/docker/" + id + "\n5:pids:/docker/" + id
         + "\n4:blkio:/docker/" + id + "\n3:cpuset:/docker/" + id
         + "\n2:rdma:/\n1:name=systemd:/docker/" + id + "\n0::/system.slice/"
         + "containerd.service\n";
}

BOOST_AUTO_TEST_SUITE(containers_unit)

BOOST_AUTO_TEST_CASE(cgroup_docker_layouts) {
  BOOST_TEST(id_in(docker_v1_cgroupfs(id_a)) == id_a);
  // Docker with the systemd driver, cgroup v2 (Debian 12, Ubuntu 22.04).
  BOOST_TEST(id_in("0::/system.slice/docker-" + id_b + ".scope\n") == id_b);
  // Docker with the systemd driver on cgroup v1.
  BOOST_TEST(id_in("11:memory:/system.slice/docker-" + id_a
                   + ".scope\n10:pids:/system.slice/docker-" + id_a
                   + ".scope\n1:name=systemd:/system.slice/docker-" + id_a
                   + ".scope\n")
             == id_a);
  // Docker with the cgroupfs driver on cgroup v2.
  BOOST_TEST(id_in("0::/docker/" + id_c + "\n") == id_c);
  // A process inside the container with its own cgroup namespace sees "/".
  BOOST_TEST(id_in("0::/\n") == "");
  // Docker in Docker: the innermost container (the last id of the line).
  BOOST_TEST(id_in("0::/docker/" + id_a + "/docker/" + id_b + "\n") == id_b);
  // ECS: /ecs/<task id>/<container id>.
  BOOST_TEST(
      id_in("9:cpuset:/ecs/5a0d5ceddf6c44c1928d367a815d890f/" + id_c + "\n")
      == id_c);
}

BOOST_AUTO_TEST_CASE(cgroup_kubernetes_layouts) {
  const std::string uid = "8d1b6a0e-5e3c-4c2b-9f0d-3a1b2c4d5e6f";
  const std::string uid_ = "8d1b6a0e_5e3c_4c2b_9f0d_3a1b2c4d5e6f";
  // cgroupfs driver, v1: /kubepods/<qos>/pod<uid>/<id> (burstable,
  // besteffort) and /kubepods/pod<uid>/<id> (guaranteed).
  for (std::string qos : {"burstable/", "besteffort/", ""}) {
    BOOST_TEST(id_in("11:pids:/kubepods/" + qos + "pod" + uid + "/" + id_a
                     + "\n9:cpu,cpuacct:/kubepods/" + qos + "pod" + uid + "/"
                     + id_a + "\n")
               == id_a);
  }
  // systemd driver, v2, containerd: cri-containerd-<id>.scope.
  for (std::string qos : {"burstable", "besteffort"}) {
    BOOST_TEST(id_in("0::/kubepods.slice/kubepods-" + qos + ".slice/kubepods-"
                     + qos + "-pod" + uid_ + ".slice/cri-containerd-" + id_b
                     + ".scope\n")
               == id_b);
  }
  // Guaranteed pods sit directly under kubepods.slice.
  BOOST_TEST(id_in("0::/kubepods.slice/kubepods-pod" + uid_
                   + ".slice/cri-containerd-" + id_c + ".scope\n")
             == id_c);
  // CRI-O, systemd driver: crio-<id>.scope (v1 and v2).
  BOOST_TEST(id_in("0::/kubepods.slice/kubepods-burstable.slice/"
                   "kubepods-burstable-pod"
                   + uid_ + ".slice/crio-" + id_d + ".scope\n")
             == id_d);
  BOOST_TEST(id_in("12:memory:/kubepods.slice/kubepods-besteffort.slice/"
                   "kubepods-besteffort-pod"
                   + uid_ + ".slice/crio-" + id_d + ".scope\n")
             == id_d);
  // dockershim with the systemd driver: docker-<id>.scope.
  BOOST_TEST(id_in("0::/kubepods.slice/kubepods-burstable.slice/"
                   "kubepods-burstable-pod"
                   + uid_ + ".slice/docker-" + id_a + ".scope\n")
             == id_a);
  // A k3s / kind node nested in a container: the pod's container, last.
  BOOST_TEST(id_in("0::/docker/" + id_a + "/kubepods/besteffort/pod" + uid + "/"
                   + id_b + "\n")
             == id_b);
}

BOOST_AUTO_TEST_CASE(cgroup_no_container) {
  // Host processes.
  BOOST_TEST(id_in("0::/init.scope\n") == "");
  BOOST_TEST(id_in("0::/user.slice/user-1000.slice/session-3.scope\n") == "");
  BOOST_TEST(id_in("12:pids:/system.slice/ssh.service\n1:name=systemd:/"
                   "system.slice/ssh.service\n0::/system.slice/ssh.service\n")
             == "");
  // 32 hex digits (this sandbox's own memory cgroup) are not an id.
  BOOST_TEST(id_in("4:memory:/process_api/bcc8ec46fb19745e7ca0c5f7973b78b6\n"
                   "0::/\n")
             == "");
  // LXC, systemd-nspawn: named, no id.
  BOOST_TEST(id_in("0::/lxc.payload.web/init.scope\n") == "");
  // Upper case is not what runtimes write (and not what the rule matches).
  std::string upper = id_a;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  BOOST_TEST(id_in("0::/docker/" + upper + "\n") == "");
  // 63 digits.
  BOOST_TEST(id_in("0::/docker/" + id_a.substr(1) + "\n") == "");
  // The controllers field does not count, only the path.
  BOOST_TEST(id_in("1:" + id_a + ":/\n") == "");
  BOOST_TEST(id_in("") == "");
}

BOOST_AUTO_TEST_CASE(cgroup_findall_rules) {
  // re.findall takes 64-digit pieces from the start of a run: 65 digits
  // give the first 64, 128 give two pieces and the last one wins.
  BOOST_TEST(id_in("0::/x/" + id_a + "7\n") == id_a);
  BOOST_TEST(id_in("0::/x/" + id_a + id_b + "\n") == id_b);
  BOOST_TEST(id_in("0::/x/" + id_a + id_b + "abc\n") == id_b);
  // The first line with an id wins, even if a later line has another.
  BOOST_TEST(
      id_in("3:cpu:/docker/" + id_a + "\n2:memory:/docker/" + id_b + "\n")
      == id_a);
  BOOST_TEST(id_in("3:cpu:/\n2:memory:/docker/" + id_b + "\n") == id_b);
  // A path may hold ':' (maxsplit=2).
  BOOST_TEST(id_in("0::/a:b/docker-" + id_c + ".scope\n") == id_c);
  // No trailing newline, CRLF and other Python line breaks.
  BOOST_TEST(id_in("0::/docker/" + id_a) == id_a);
  BOOST_TEST(id_in("1:cpu:/\r\n0::/docker/" + id_a + "\r\n") == id_a);
  BOOST_TEST(id_in("1:cpu:/\v0::/docker/" + id_a) == id_a);
  // U+2028 splits lines too: the id is on a line of its own, no colons.
  BOOST_TEST(id_in("0::/docker/\xe2\x80\xa8" + id_a) == "");
}

BOOST_AUTO_TEST_CASE(cgroup_hostile) {
  // A malformed line anywhere fails the whole file, as in gProfiler.
  BOOST_TEST(id_in("0::/docker/" + id_a + "\ngarbage\n") == "");
  BOOST_TEST(id_in("0::/docker/" + id_a + "\n\n1:cpu:/\n") == "");
  BOOST_TEST(id_in("no colon " + id_a) == "");
  // Not UTF-8.
  BOOST_TEST(id_in("0::/docker/" + id_a + "\xff\n") == "");
  // Binary junk.
  std::string junk;
  for (int i = 0; i < 4096; ++i)
    junk += static_cast<char>((i * 7919) & 0xff);
  BOOST_TEST(id_in(junk) == "");
  // A huge line (8 MiB path): linear time, still found.
  auto start = steady_clock::now();
  std::string huge = "0::/" + std::string(size_t{8} << 20, 'a') + "/docker-"
                     + id_b + ".scope";
  BOOST_TEST(id_in(huge) == id_b);
  // A huge run of hex digits: the last whole piece.
  std::string hex(size_t{64} * 100000 + 5, 'f');
  hex.replace(size_t{64} * 99999, 64, id_c);
  BOOST_TEST(id_in("0::/" + hex) == id_c);
  // Many short lines.
  std::string many;
  for (int i = 0; i < 200000; ++i)
    many += "7:cpu:/x\n";
  BOOST_TEST(id_in(many + "0::/docker/" + id_d + "\n") == id_d);
  BOOST_TEST(
      std::chrono::duration_cast<milliseconds>(steady_clock::now() - start)
          .count()
      < 5000);
}

BOOST_AUTO_TEST_CASE(docker_reply) {
  std::vector<rt::container_entry> out;
  auto json = "[{\"Id\":\"" + id_a
              + "\",\"Names\":[\"/web\"],\"Image\":\"nginx\"},"
                "{\"Id\":\""
              + id_b
              + "\",\"Names\":[\"/web/db\",\"/db\"]},"
                "{\"Id\":\""
              + id_c
              + "\",\"Names\":[\"/other/alias\"]},"
                "{\"Id\":\"short\",\"Names\":[\"/bad\"]},"
                "{\"Id\":\""
              + id_d + "\",\"Names\":[]},{\"Names\":[\"/x\"]},17,null]";
  BOOST_TEST(rt::parse_docker_containers(json, out) == "");
  BOOST_TEST_REQUIRE(out.size() == 3u);
  BOOST_TEST(out[0].id == id_a);
  BOOST_TEST(out[0].name == "web");
  // The link alias "/web/db" is not db's name.
  BOOST_TEST(out[1].name == "db");
  // Only an alias: better than nothing.
  BOOST_TEST(out[2].name == "other/alias");

  out.clear();
  BOOST_TEST(rt::parse_docker_containers("{}", out) != "");
  BOOST_TEST(rt::parse_docker_containers("[{\"Id\": ", out) != "");
  BOOST_TEST(rt::parse_docker_containers(
                 std::string(100000, '[') + std::string(100000, ']'), out)
             != "");
  BOOST_TEST(rt::parse_docker_containers("", out) != "");
  BOOST_TEST(out.empty());
  // A name longer than the limit is dropped.
  json = "[{\"Id\":\"" + id_a + "\",\"Names\":[\"/"
         + std::string(rt::max_container_name + 1, 'n') + "\"]}]";
  BOOST_TEST(rt::parse_docker_containers(json, out) == "");
  BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(grpc_framing) {
  std::string_view msg;
  auto framed = rt::grpc_frame("hello");
  BOOST_TEST(framed.size() == 10u);
  BOOST_TEST(rt::grpc_unframe(framed, msg, 100) == "");
  BOOST_TEST(msg == "hello");
  BOOST_TEST(rt::grpc_frame({}) == std::string(5, '\0'));
  // Truncated, too long, compressed, two frames, too short.
  BOOST_TEST(rt::grpc_unframe(framed.substr(0, 8), msg, 100) != "");
  BOOST_TEST(rt::grpc_unframe(framed, msg, 4) != "");
  auto compressed = framed;
  compressed[0] = 1;
  BOOST_TEST(rt::grpc_unframe(compressed, msg, 100) != "");
  BOOST_TEST(rt::grpc_unframe(framed + framed, msg, 100) != "");
  BOOST_TEST(rt::grpc_unframe("\0\0", msg, 100) != "");
  BOOST_TEST(rt::grpc_unframe(std::string("\0\xff\xff\xff\xff", 5), msg,
                              size_t{16} << 20)
             != "");
}

/// Hand-encoded protobuf, as the tests' CRI stand-in encodes it.
std::string pb_varint(uint64_t v) {
  std::string out;
  do {
    auto b = static_cast<char>(v & 0x7f);
    v >>= 7;
    if (v != 0)
      b = static_cast<char>(b | 0x80);
    out += b;
  } while (v != 0);
  return out;
}

std::string pb_bytes(uint32_t field, const std::string& s) {
  return pb_varint(field << 3 | 2) + pb_varint(s.size()) + s;
}

std::string pb_map(uint32_t field, const std::string& k, const std::string& v) {
  return pb_bytes(field, pb_bytes(1, k) + pb_bytes(2, v));
}

std::string k8s_container(const std::string& id, bool restart_annotation) {
  auto metadata = pb_bytes(1, "web") + pb_varint(2 << 3) + pb_varint(4);
  auto c = pb_bytes(1, id) + pb_bytes(2, std::string(64, 'f'))
           + pb_bytes(3, metadata) + pb_bytes(4, pb_bytes(1, "busybox"))
           + pb_varint(6 << 3) + pb_varint(1) + pb_varint(7 << 3)
           + pb_varint(1700000000000000000ull) + pb_varint(13 << 3 | 5) + "abcd"
           + pb_varint(14 << 3 | 1) + "abcdefgh"
           + pb_map(8, "io.kubernetes.container.name", "web")
           + pb_map(8, "io.kubernetes.pod.name", "shop-7d4b9")
           + pb_map(8, "io.kubernetes.pod.namespace", "prod")
           + pb_map(8, "io.kubernetes.pod.uid", "uid-1");
  if (restart_annotation)
    c += pb_map(9, "io.kubernetes.container.restartCount", "3");
  return c;
}

BOOST_AUTO_TEST_CASE(cri_reply) {
  auto plain = pb_bytes(1, id_c)
               + pb_bytes(3, pb_bytes(1, "sidecar") + pb_varint(2 << 3)
                                 + pb_varint(0));
  auto message = pb_bytes(1, k8s_container(id_a, true))
                 + pb_bytes(1, k8s_container(id_b, false)) + pb_bytes(1, plain)
                 + pb_bytes(1, pb_bytes(1, id_d)) + pb_varint(7 << 3)
                 + pb_varint(99); // unknown field
  std::vector<rt::cri_container> out;
  BOOST_TEST(rt::decode_list_containers(message, out) == "");
  BOOST_TEST_REQUIRE(out.size() == 4u);
  BOOST_TEST(out[0].id == id_a);
  BOOST_TEST(out[0].metadata_name == "web");
  BOOST_TEST(out[0].attempt == 4u);
  BOOST_TEST(out[0].labels.size() == 4u);
  // dockershim's name: k8s_<container>_<pod>_<namespace>_<uid>_<restarts>.
  BOOST_TEST(rt::cri_container_name(out[0])
             == "k8s_web_shop-7d4b9_prod_uid-1_3");
  // No restartCount annotation: metadata.attempt.
  BOOST_TEST(rt::cri_container_name(out[1])
             == "k8s_web_shop-7d4b9_prod_uid-1_4");
  // Not a Kubernetes container: its metadata name.
  BOOST_TEST(rt::cri_container_name(out[2]) == "sidecar");
  BOOST_TEST(rt::cri_container_name(out[3]) == "");
}

BOOST_AUTO_TEST_CASE(cri_reply_hostile) {
  std::vector<rt::cri_container> out;
  auto good = pb_bytes(1, k8s_container(id_a, true));
  // Every truncation of a valid message is refused or decodes cleanly,
  // never reads past the end.
  for (size_t n = 0; n < good.size(); ++n) {
    out.clear();
    auto why = rt::decode_list_containers(good.substr(0, n), out);
    BOOST_TEST((n == 0 ? why.empty() : !why.empty()), "prefix " << n);
  }
  // A length past the end, a 11-byte varint, a group, a known field with
  // the wrong wire type, field number 0.
  BOOST_TEST(rt::decode_list_containers("\x0a\xff\xff\xff\x0f\x01", out) != "");
  BOOST_TEST(rt::decode_list_containers(
                 "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", out)
             != "");
  BOOST_TEST(rt::decode_list_containers("\x0b\x0c", out) != "");
  BOOST_TEST(rt::decode_list_containers(pb_bytes(1, "\x08\x01"), out) != "");
  BOOST_TEST(rt::decode_list_containers(std::string("\x00\x01", 2), out) != "");
  // The container limit.
  out.clear();
  BOOST_TEST(rt::decode_list_containers(good + good + good, out, 2) != "");
  // Random bytes: whatever comes back, no crash and no overread (ASan).
  uint64_t seed = 88172645463325252ull;
  for (int round = 0; round < 2000; ++round) {
    std::string junk;
    for (int i = 0; i < 64; ++i) {
      seed ^= seed << 13;
      seed ^= seed >> 7;
      seed ^= seed << 17;
      junk += static_cast<char>(seed & 0xff);
    }
    out.clear();
    rt::decode_list_containers(junk, out);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// -- against real stand-ins on real unix sockets -----------------------------

/// A stand-in started as a child process, which prints "READY" once it
/// listens and exits when its stdin closes; killed and reaped at the end.
class standin {
public:
  explicit standin(const std::vector<std::string>& argv) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    auto rc = posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    if (rc != 0) {
      ::close(out[0]);
      pid_ = -1;
      throw std::runtime_error("cannot start " + argv[0] + ": "
                               + std::strerror(rc));
    }
    std::string line;
    auto deadline = steady_clock::now() + std::chrono::seconds{60};
    while (line.find('\n') == std::string::npos
           && steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      char buf[256];
      auto n = ::read(out[0], buf, sizeof buf);
      if (n <= 0)
        break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);
    if (line.rfind("READY", 0) != 0) {
      stop();
      throw std::runtime_error("stand-in " + argv[1] + " did not start: '"
                               + line + "'");
    }
  }

  ~standin() {
    stop();
  }

  standin(const standin&) = delete;
  standin& operator=(const standin&) = delete;

private:
  void stop() {
    if (stdin_ >= 0)
      ::close(stdin_);
    stdin_ = -1;
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR)
        ;
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::binary};
  out << text;
  if (!out)
    throw std::runtime_error("cannot write " + path);
}

size_t count_lines(const std::string& path) {
  std::ifstream in{path};
  size_t n = 0;
  for (std::string line; std::getline(in, line);)
    ++n;
  return n;
}

std::string read_all(const std::string& path) {
  std::ifstream in{path};
  return {std::istreambuf_iterator<char>{in}, {}};
}

struct names_fixture {
  rt::private_temp_dir temp{"/tmp"};
  std::string dir = temp.path();
  std::string proc = dir + "/proc";
  std::string docker_sock = dir + "/docker.sock";
  std::string cri_sock = dir + "/cri.sock";
  std::string requests = dir + "/requests.log";
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring
      = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);

  names_fixture() {
    ::mkdir(proc.c_str(), 0755);
    // PID 100: Docker, cgroup v1 with the cgroupfs driver.
    add_pid(100, docker_v1_cgroupfs(id_a));
    // PID 101: Docker, cgroup v2 with the systemd driver.
    add_pid(101, "0::/system.slice/docker-" + id_b + ".scope\n");
    // PID 102: on the host.
    add_pid(102, "0::/user.slice/user-1000.slice/session-3.scope\n");
    // PID 103: in a container no runtime knows.
    add_pid(103, "0::/docker/" + id_d + "\n");
    // PID 104: containerd, Kubernetes, systemd driver.
    add_pid(104, "0::/kubepods.slice/kubepods-burstable.slice/"
                 "kubepods-burstable-pod8d1b6a0e_5e3c_4c2b_9f0d_3a1b2c4d5e6f"
                 ".slice/cri-containerd-"
                     + id_c + ".scope\n");
    // PID 105: CRI, Kubernetes, cgroupfs driver (the Docker container id_a
    // seen through CRI as well).
    add_pid(105, "9:cpu,cpuacct:/kubepods/besteffort/pod8d1b6a0e-5e3c-4c2b-"
                 "9f0d-3a1b2c4d5e6f/"
                     + id_a + "\n");
    write_file(dir + "/docker.json",
               "[{\"Id\":\"" + id_a
                   + "\",\"Names\":[\"/web\"],\"State\":\"running\"},"
                     "{\"Id\":\""
                   + id_b
                   + "\",\"Names\":[\"/web/db\",\"/db\"],\"State\":"
                     "\"exited\"}]");
    write_file(dir + "/cri.json",
               "[{\"id\":\"" + id_c
                   + "\",\"name\":\"api\",\"attempt\":1,\"labels\":{"
                     "\"io.kubernetes.container.name\":\"api\","
                     "\"io.kubernetes.pod.name\":\"shop-7d4b9\","
                     "\"io.kubernetes.pod.namespace\":\"prod\","
                     "\"io.kubernetes.pod.uid\":\"8d1b6a0e-5e3c-4c2b-9f0d-"
                     "3a1b2c4d5e6f\"},\"annotations\":{"
                     "\"io.kubernetes.container.restartCount\":\"2\"}},"
                     "{\"id\":\""
                   + id_a + "\",\"name\":\"cri-name-of-web\"}]");
    log::silence();
    auto lg = log::get("containers");
    lg->sinks().push_back(ring);
    lg->set_level(spdlog::level::info);
  }

  ~names_fixture() {
    auto& sinks = log::get("containers")->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), ring), sinks.end());
  }

  void add_pid(int pid, const std::string& cgroup) {
    auto d = proc + "/" + std::to_string(pid);
    ::mkdir(d.c_str(), 0755);
    write_file(d + "/cgroup", cgroup);
  }

  std::unique_ptr<standin> docker(const std::string& mode = "ok") {
    return std::make_unique<standin>(std::vector<std::string>{
        "python3", GPA_TEST_SUPPORT_DIR "/docker_standin.py", "--socket",
        docker_sock, "--containers", dir + "/docker.json", "--mode", mode,
        "--log", requests});
  }

  std::unique_ptr<standin> cri(const std::string& mode = "ok") {
    return std::make_unique<standin>(std::vector<std::string>{
        GPA_NODE_BIN, GPA_TEST_SUPPORT_DIR "/cri_standin.js", "--socket",
        cri_sock, "--containers", dir + "/cri.json", "--mode", mode, "--log",
        requests});
  }

  rt::container_sockets sockets(bool docker, bool cri) {
    rt::container_sockets s;
    s.docker = docker ? docker_sock : dir + "/no-docker.sock";
    s.cri
        = {cri ? cri_sock : dir + "/no-containerd.sock", dir + "/no-crio.sock"};
    s.timeout = milliseconds{400};
    return s;
  }

  std::vector<std::string> log_lines() {
    return ring->last_formatted();
  }

  size_t log_lines_with(const std::string& text) {
    auto lines = log_lines();
    return static_cast<size_t>(
        std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
          return l.find(text) != std::string::npos;
        }));
  }
};

/// Milliseconds `f` takes.
template <class F>
int64_t time_of(F&& f) {
  auto start = steady_clock::now();
  f();
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start)
      .count();
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(containers_real, names_fixture)

BOOST_AUTO_TEST_CASE(docker_names) {
  auto d = docker();
  rt::container_names names{sockets(true, false), proc};
  BOOST_TEST(names.name_of(100) == "web");
  // Stopped containers are listed too (gProfiler asks for all).
  BOOST_TEST(names.name_of(101) == "db");
  BOOST_TEST(names.name_of(102) == "");
  BOOST_TEST(names.name_of(103) == "");
  BOOST_TEST(names.name_of(105) == "web");
  BOOST_TEST(names.name_of(999) == ""); // no such process
  BOOST_TEST(names.id_of(101) == id_b);
  BOOST_TEST(names.take_seen_names()
             == (std::vector<std::string>{"db", "web"}));
  BOOST_TEST(names.take_seen_names().empty());
  // One listing: the unknown id 103 came within the refresh period.
  BOOST_TEST(count_lines(requests) == 1u);
  BOOST_TEST(read_all(requests) == "GET /containers/json?all=1\n");
  BOOST_TEST(names.stats().refreshes == 1u);
  BOOST_TEST(log_lines_with("container names from Docker at " + docker_sock
                            + ": 2 containers")
             == 1u);
}

BOOST_AUTO_TEST_CASE(refresh_on_miss_is_rate_limited) {
  auto d = docker();
  auto s = sockets(true, false);
  s.min_refresh = milliseconds{0};
  rt::container_names names{s, proc};
  BOOST_TEST(names.name_of(100) == "web");
  BOOST_TEST(names.name_of(100) == "web"); // cached
  BOOST_TEST(count_lines(requests) == 1u);
  // Without a period, every miss asks again (gProfiler's refresh-on-miss).
  BOOST_TEST(names.name_of(103) == "");
  BOOST_TEST(names.name_of(103) == "");
  BOOST_TEST(count_lines(requests) == 3u);
  // A container that appears later is found at the next refresh.
  write_file(dir + "/docker.json",
             "[{\"Id\":\"" + id_d + "\",\"Names\":[\"/late\"]}]");
  BOOST_TEST(names.name_of(103) == "late");
  // The cache is what the last listing said: web is gone now, and known
  // again from the same listing only after a refresh that lists it.
  BOOST_TEST(names.name_of(100) == "");
}

BOOST_AUTO_TEST_CASE(cri_names) {
  auto c = cri();
  rt::container_names names{sockets(false, true), proc};
  BOOST_TEST(names.name_of(104)
             == "k8s_api_shop-7d4b9_prod_8d1b6a0e-5e3c-4c2b-9f0d-"
                "3a1b2c4d5e6f_2");
  // Not a Kubernetes container: its CRI metadata name.
  BOOST_TEST(names.name_of(105) == "cri-name-of-web");
  BOOST_TEST(names.name_of(102) == "");
  BOOST_TEST(read_all(requests)
             == "/runtime.v1.RuntimeService/ListContainers\n");
  BOOST_TEST(log_lines_with("CRI at " + cri_sock + ": 2 containers") == 1u);
}

BOOST_AUTO_TEST_CASE(cri_falls_back_to_v1alpha2) {
  auto c = cri("v1alpha2-only");
  auto s = sockets(false, true);
  s.min_refresh = milliseconds{0};
  rt::container_names names{s, proc};
  BOOST_TEST(names.name_of(104).rfind("k8s_api_shop-7d4b9_prod_", 0) == 0);
  BOOST_TEST(read_all(requests)
             == "/runtime.v1.RuntimeService/ListContainers\n"
                "/runtime.v1alpha2.RuntimeService/ListContainers\n");
  // The version that answered is remembered.
  BOOST_TEST(names.name_of(103) == "");
  BOOST_TEST(read_all(requests)
             == "/runtime.v1.RuntimeService/ListContainers\n"
                "/runtime.v1alpha2.RuntimeService/ListContainers\n"
                "/runtime.v1alpha2.RuntimeService/ListContainers\n");
  BOOST_TEST(names.stats().failures == 0u);
}

BOOST_AUTO_TEST_CASE(docker_and_cri) {
  auto d = docker();
  auto c = cri();
  rt::container_names names{sockets(true, true), proc};
  // Docker's name wins for a container both list (gProfiler lists Docker
  // first and adds CRI's others).
  BOOST_TEST(names.name_of(105) == "web");
  BOOST_TEST(names.name_of(104).rfind("k8s_api_", 0) == 0);
  BOOST_TEST(names.name_of(101) == "db");
  BOOST_TEST(count_lines(requests) == 2u);
  auto seen = names.take_seen_names();
  BOOST_TEST(seen.size() == 3u);
}

BOOST_AUTO_TEST_CASE(no_socket_is_quick_and_said_once) {
  auto s = sockets(false, false);
  s.min_refresh = milliseconds{0}; // every miss refreshes
  rt::container_names names{s, proc};
  auto took = time_of([&] {
    for (int i = 0; i < 50; ++i) {
      BOOST_TEST(names.name_of(100) == "");
      BOOST_TEST(names.name_of(104) == "");
    }
  });
  BOOST_TEST(took < 1000);
  BOOST_TEST(names.stats().refreshes == 100u);
  BOOST_TEST(names.stats().failures == 0u);
  // The id is still known.
  BOOST_TEST(names.id_of(100) == id_a);
  // One line for the whole run.
  BOOST_TEST(log_lines().size() == 1u);
  BOOST_TEST(log_lines_with("no container runtime answers") == 1u);
  BOOST_TEST(log_lines_with("missing") == 1u);
}

BOOST_AUTO_TEST_CASE(a_socket_that_never_answers_costs_the_timeout_once) {
  for (std::string mode : {"hang", "silent"}) {
    auto d = docker(mode);
    auto s = sockets(true, false);
    s.timeout = milliseconds{300};
    rt::container_names names{s, proc};
    auto first = time_of([&] {
      BOOST_TEST(names.name_of(100) == "");
    });
    BOOST_TEST(first >= 250, mode);
    BOOST_TEST(first < 1500, mode);
    // Within the refresh period: no new wait.
    auto second = time_of([&] {
      for (int i = 0; i < 10; ++i)
        BOOST_TEST(names.name_of(101) == "");
    });
    BOOST_TEST(second < 200, mode);
    BOOST_TEST(names.stats().failures == 1u, mode);
  }
  BOOST_TEST(log_lines_with("does not answer: no answer within 300 ms") == 2u);
}

BOOST_AUTO_TEST_CASE(a_cri_socket_that_never_answers) {
  auto c = cri("silent");
  auto s = sockets(false, true);
  s.timeout = milliseconds{300};
  rt::container_names names{s, proc};
  auto took = time_of([&] {
    BOOST_TEST(names.name_of(104) == "");
  });
  BOOST_TEST(took < 1500);
  BOOST_TEST(names.stats().failures == 1u);
}

BOOST_AUTO_TEST_CASE(garbage_replies) {
  for (std::string mode :
       {"garbage", "bad-json", "deep-json", "huge", "status500"}) {
    auto d = docker(mode);
    auto s = sockets(true, false);
    s.timeout = milliseconds{5000};
    s.max_reply_bytes = size_t{1} << 20;
    s.min_refresh = milliseconds{0};
    rt::container_names names{s, proc};
    BOOST_TEST(names.name_of(100) == "", mode);
    BOOST_TEST(names.name_of(101) == "", mode);
    BOOST_TEST(names.stats().failures == 2u, mode);
  }
  // Said once per socket while it keeps failing (twice here: the two
  // failures of each of the five stand-ins give five lines).
  BOOST_TEST(log_lines_with("does not answer") == 5u);
  for (std::string mode : {"bad-proto", "bad-frame", "grpc-error"}) {
    auto c = cri(mode);
    rt::container_names names{sockets(false, true), proc};
    BOOST_TEST(names.name_of(104) == "", mode);
    BOOST_TEST(names.stats().failures == 1u, mode);
  }
  // Something that is not a socket at the path.
  ::unlink(docker_sock.c_str());
  write_file(docker_sock, "not a socket");
  rt::container_names names{sockets(true, false), proc};
  BOOST_TEST(names.name_of(100) == "");
  // The start line names it, and a warning says it does not answer.
  BOOST_TEST(log_lines_with("not a socket") == 2u);
  BOOST_TEST(log_lines_with("does not answer: not a socket") == 1u);
}

BOOST_AUTO_TEST_CASE(hostile_cgroup_files) {
  auto d = docker();
  rt::container_names names{sockets(true, false), proc};
  // A cgroup file far larger than the bound: only its whole lines within
  // the bound count (here: the id on the first line is found).
  add_pid(200, "0::/docker/" + id_a + "\n" + std::string(1 << 20, 'x'));
  BOOST_TEST(names.name_of(200) == "web");
  // A directory, a FIFO, a symlink to a huge device: nothing, no hang.
  auto d201 = proc + "/201";
  ::mkdir(d201.c_str(), 0755);
  ::mkdir((d201 + "/cgroup").c_str(), 0755);
  BOOST_TEST(names.name_of(201) == "");
  auto d202 = proc + "/202";
  ::mkdir(d202.c_str(), 0755);
  ::mkfifo((d202 + "/cgroup").c_str(), 0644);
  BOOST_TEST(names.name_of(202) == "");
  auto d203 = proc + "/203";
  ::mkdir(d203.c_str(), 0755);
  BOOST_TEST(::symlink("/dev/zero", (d203 + "/cgroup").c_str()) == 0);
  BOOST_TEST(names.name_of(203) == "");
  BOOST_TEST(names.name_of(-1) == "");
  BOOST_TEST(names.name_of(0) == "");
}

BOOST_AUTO_TEST_CASE(the_cache_is_bounded) {
  auto d = docker();
  auto s = sockets(true, false);
  s.max_cached = 1;
  rt::container_names names{s, proc};
  // Docker lists web, then db: only the first fits.
  BOOST_TEST(names.name_of(100) == "web");
  BOOST_TEST(names.name_of(101) == "");
}

BOOST_AUTO_TEST_SUITE_END()
