#pragma once

// Containers of processes, as gProfiler finds them: the container id from
// /proc/PID/cgroup (granulate-utils' rule: the last 64-hex-digit run of the
// first cgroup line whose path has one), and the container's name from the
// container runtimes on this host: the Docker Engine API over its unix
// socket (GET /containers/json) and CRI (containerd, CRI-O) over theirs
// (gRPC RuntimeService/ListContainers over HTTP/2 cleartext). Names are
// cached per id; an unknown id refreshes the cache from the runtimes, at
// most once per refresh period, with short timeouts. Without any runtime
// socket the agent has ids only (names are empty) and says so once.
//
// Everything read here is hostile: /proc files are read bounded, replies are
// bounded in size, the JSON is depth-checked, the protobuf decoder checks
// every length against what is left.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/options.hpp"

namespace gpa::rt {

/// The container id of a process from the text of its /proc/PID/cgroup, or
/// "" if it is in no container. granulate-utils' rule, which gProfiler
/// uses: the lines (split as Python's str.splitlines) are
/// "hierarchy-id:controllers:path"; the first line whose path holds a run
/// of 64 hex digits [a-f0-9] gives the last such run of that path (split
/// into 64-digit pieces from its start, as re.findall does). Covers Docker
/// (/docker/<id>, docker-<id>.scope), containerd (cri-containerd-<id>.scope,
/// /kubepods/.../<id>), CRI-O (crio-<id>.scope), ECS (/ecs/<task>/<id>) and
/// Kubernetes' pod layouts with either cgroup driver, on cgroup v1 and v2.
/// As in gProfiler, a text that is not valid UTF-8 or that has a line
/// without two ':' (an empty line too) gives "".
std::string container_id_from_cgroup(std::string_view proc_pid_cgroup_text);

/// Whether `id` is 64 lowercase hex digits, the only ids the cgroup rule
/// yields.
bool is_container_id(std::string_view id);

/// One container a runtime listed.
struct container_entry {
  std::string id;
  std::string name;
};

/// The longest container name kept; longer names are dropped.
inline constexpr size_t max_container_name = 1024;

/// Parses the Docker Engine API's reply to GET /containers/json: a JSON
/// array of objects with "Id" and "Names" (["/name", ...]). The name is the
/// first of "Names" that is not a legacy link alias ("/other/alias"),
/// without its leading '/', as Docker's own `docker ps` shows it. Entries
/// without a 64-hex id or a usable name are skipped. Returns "" or what is
/// wrong with the reply.
std::string parse_docker_containers(std::string_view json,
                                    std::vector<container_entry>& out);

/// The gRPC message of a unary reply body: one frame of 1 flag byte
/// (0: not compressed), a 4-byte big-endian length and the message. Returns
/// "" or what is wrong (truncated, compressed, longer than `max_message`,
/// more than one frame).
std::string grpc_unframe(std::string_view body, std::string_view& message,
                         size_t max_message);

/// A gRPC request body: `message` in one uncompressed frame.
std::string grpc_frame(std::string_view message);

/// A container as CRI's ListContainers lists it, with only what names need.
struct cri_container {
  std::string id;
  std::string metadata_name;
  uint32_t attempt = 0;
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<std::pair<std::string, std::string>> annotations;
};

/// Decodes a runtime.v1(alpha2).ListContainersResponse (protobuf): field 1,
/// repeated Container {id = 1, metadata = 3 {name = 1, attempt = 2},
/// labels = 8, annotations = 9 (map<string, string>)}; other fields are
/// skipped. Returns "" or what is malformed (a length past the end, a bad
/// varint, a group, a known field with the wrong wire type, more than
/// `max_containers`).
std::string decode_list_containers(std::string_view message,
                                   std::vector<cri_container>& out,
                                   size_t max_containers = 100000);

/// The name of a CRI container as gProfiler gives it: for a Kubernetes
/// container the name dockershim would have given it,
/// "k8s_<container>_<pod>_<namespace>_<pod uid>_<restart count>" from the
/// labels io.kubernetes.{container.name,pod.name,pod.namespace,pod.uid} and
/// the annotation io.kubernetes.container.restartCount (metadata.attempt if
/// that is missing); else (ours: gProfiler fails the whole listing then)
/// the container's metadata name. "" if it has neither.
std::string cri_container_name(const cri_container& c);

/// Where the container runtimes listen, and how long to wait for them.
struct container_sockets {
  /// Docker Engine API; empty: do not ask Docker. Defaults: where Docker,
  /// containerd and CRI-O listen (container_options, gProfiler's paths).
  std::string docker = container_options{}.docker_socket;
  /// CRI runtimes (containerd, CRI-O); each asked in turn.
  std::vector<std::string> cri = container_options{}.cri_sockets;
  /// Longest wait for one runtime's answer (connecting included).
  std::chrono::milliseconds timeout{500};
  /// Least time between two refreshes of the names from the runtimes; an
  /// unknown id within it gets "" and is looked up at the next refresh.
  std::chrono::milliseconds min_refresh{10000};
  /// Largest reply read from a runtime.
  size_t max_reply_bytes = size_t{16} << 20;
  /// Most names cached (and most unknown ids remembered).
  size_t max_cached = 10000;
};

/// Names of the containers of processes. Thread-safe (one mutex: a refresh
/// blocks other callers for at most the timeouts).
class container_names {
public:
  explicit container_names(container_sockets sockets,
                           std::string proc_root = "/proc");
  ~container_names();
  container_names(const container_names&) = delete;
  container_names& operator=(const container_names&) = delete;

  /// The container name of process `pid`, "" if it is in no container, its
  /// container is not known to any runtime, or no runtime answers. Reads
  /// /proc/PID/cgroup (bounded); an id not in the cache refreshes the cache
  /// (at most once per min_refresh). Never throws.
  std::string name_of(int32_t pid);

  /// The container id of process `pid` from its cgroup file, "" if none or
  /// unreadable.
  std::string id_of(int32_t pid);

  /// The name of container `id` (cache, then a refresh as name_of()).
  std::string name_of_id(const std::string& id);

  /// The distinct names name_of() and name_of_id() returned since the last
  /// call, sorted (the profile header's "containers"; gProfiler resets its
  /// list at each profile).
  std::vector<std::string> take_seen_names();

  /// What the lookups did, for tests and metrics.
  struct counters {
    /// Refreshes from the runtimes.
    uint64_t refreshes = 0;
    /// Requests to each kind of runtime that failed (timeout, refused,
    /// malformed reply); a missing socket is not a failure.
    uint64_t failures = 0;
  };
  counters stats() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace gpa::rt
