#include "runtime/process_env.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <limits>
#include <stdexcept>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/proc.hpp"
#include "runtime/written_file.hpp"

namespace gpa::rt {

namespace {

sigset_t agent_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2})
    sigaddset(&set, sig);
  return set;
}

} // namespace

void block_agent_signals() {
  auto set = agent_signal_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bool is_stop_signal(int sig) {
  return sig == SIGINT || sig == SIGTERM;
}

int wait_agent_signal(std::chrono::milliseconds timeout) {
  auto set = agent_signal_set();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  ts.tv_nsec = static_cast<long>((timeout.count() % 1000) * 1000000);
  int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

bool in_init_pid_namespace(const std::string& proc_root) {
  proc_stat st;
  return make_proc_source(proc_root)->read_stat(2, st) && st.comm == "kthreadd";
}

const char* const pid_namespace_message
    = "Please run me in the init PID namespace! In Docker, make sure you "
      "pass '--pid=host'. In Kubernetes, add 'hostPID: true' in the Pod "
      "spec.\nYou can disable this check with --disable-pidns-check.";

std::string disable_core_files() {
  rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0)
    return std::string{"cannot disable core files (setrlimit RLIMIT_CORE): "}
           + std::strerror(errno);
  return {};
}

// -- private temporary directory
// -----------------------------------------------

private_temp_dir::private_temp_dir(const std::string& root) {
  std::string templ = root + "/" + temp_dir_prefix + "XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr)
    throw std::runtime_error("cannot create a temporary directory in " + root
                             + ": " + std::strerror(errno));
  path_ = templ;
  // The lock is taken under another name, then given the name that
  // remove_stale_temp_dirs() looks for: a lock file by that name is held
  // for as long as its agent lives.
  auto pending = path_ + "/" + temp_lock_name + ".new";
  auto lock = open_written_file(pending, if_exists::fail, 0600);
  std::string why;
  if (!lock)
    why = message_of(lock.error());
  else if (::flock(lock->fd(), LOCK_EX | LOCK_NB) != 0
           || ::rename(pending.c_str(), (path_ + "/" + temp_lock_name).c_str())
                  != 0)
    why = std::string{"cannot lock it: "} + std::strerror(errno);
  if (!why.empty()) {
    remove_tree(path_);
    throw std::runtime_error("cannot set up the temporary directory " + path_
                             + ": " + why);
  }
  lock_fd_ = lock->release();
}

private_temp_dir::~private_temp_dir() {
  // Removed while still locked, so that no other agent's clean-up races it.
  remove_tree(path_);
  if (lock_fd_ >= 0)
    ::close(lock_fd_);
}

void remove_tree(const std::string& path) {
  auto p = path;
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  if (p.empty() || p == "/")
    return;
  auto slash = p.rfind('/');
  std::string parent = slash == std::string::npos ? "."
                       : slash == 0               ? "/"
                                                  : p.substr(0, slash);
  std::string base = slash == std::string::npos ? p : p.substr(slash + 1);
  int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  remove_tree_at(fd, base);
  ::close(fd);
}

// -- PID file
// ----------------------------------------------------------------------

namespace {

/// Up to 64 bytes of the file open at `fd`, from its start.
std::string head_of(int fd) {
  char buf[64];
  auto n = ::pread(fd, buf, sizeof(buf), 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
}

std::string trimmed(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.pop_back();
  size_t start = 0;
  while (start < text.size()
         && std::isspace(static_cast<unsigned char>(text[start])))
    ++start;
  return text.substr(start);
}

/// The PID in `text` (digits only, at most 10), or 0.
long parse_pid(const std::string& text) {
  if (text.empty() || text.size() > 10
      || !std::all_of(text.begin(), text.end(), [](char c) {
           return c >= '0' && c <= '9';
         }))
    return 0;
  auto pid = std::stol(text);
  return pid > 0 && pid <= std::numeric_limits<pid_t>::max() ? pid : 0;
}

/// The command name of a live process, or "" if there is none.
std::string live_process_name(long pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)
    return {};
  std::string comm = "?";
  int fd = ::open(("/proc/" + std::to_string(pid) + "/comm").c_str(),
                  O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[64];
    auto n = ::read(fd, buf, sizeof(buf));
    if (n > 0)
      comm = trimmed(std::string(buf, static_cast<size_t>(n)));
    ::close(fd);
  }
  return comm;
}

} // namespace

pid_file::pid_file(const std::string& path) {
  auto opened = open_written_file(path, if_exists::reuse, 0644, true);
  if (!opened)
    throw start_error("--pid-file: " + message_of(opened.error()), 2);
  file_ = std::move(*opened);
  if (::flock(file_.fd(), LOCK_EX | LOCK_NB) != 0) {
    auto other = trimmed(head_of(file_.fd()));
    throw start_error("another gprofiler-agent is running (PID "
                          + (other.empty() ? "?" : other) + ", holds " + path
                          + "); one instance per host, or give another "
                            "--pid-file",
                      1);
  }
  if (!file_.created()) {
    // An existing file is reused only if it holds nothing or the PID of a
    // process that is gone (an agent killed before it could remove it).
    struct stat st {};
    auto text = trimmed(head_of(file_.fd()));
    bool small = ::fstat(file_.fd(), &st) == 0 && st.st_size <= 32;
    long pid = parse_pid(text);
    if (!small || (!text.empty() && pid == 0))
      throw start_error("--pid-file: " + path
                            + " holds something that is not a PID; refusing "
                              "to overwrite it (is it really a PID file?)",
                        2);
    if (pid != 0 && pid != ::getpid()) {
      // Unlocked, but the PID of a running gProfiler (the Python agent does
      // not lock it): one profiler per host. Any other process only reuses
      // a dead agent's PID.
      auto comm = live_process_name(pid);
      if (comm.rfind("gprofiler", 0) == 0)
        throw start_error("another gProfiler is running (PID "
                              + std::to_string(pid) + ", " + comm
                              + ", named in " + path
                              + "); one instance per host, or give another "
                                "--pid-file",
                          1);
    }
    if (::ftruncate(file_.fd(), 0) != 0)
      throw start_error(
          "cannot write PID file " + path + ": " + std::strerror(errno), 1);
  }
  text_ = std::to_string(::getpid()) + "\n";
  if (::pwrite(file_.fd(), text_.data(), text_.size(), 0)
      != static_cast<ssize_t>(text_.size())) {
    auto err = errno;
    if (file_.created() && file_.still_at(path))
      ::unlink(path.c_str());
    throw start_error(
        "cannot write PID file " + path + ": " + std::strerror(err), 1);
  }
  path_ = path;
}

pid_file::~pid_file() {
  // Removed only if the name still is our file and it still holds our PID:
  // a file someone put there meanwhile is not ours to delete.
  if (!path_.empty() && file_.still_at(path_) && head_of(file_.fd()) == text_)
    ::unlink(path_.c_str());
}

} // namespace gpa::rt
