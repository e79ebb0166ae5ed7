// The real process launcher: Boost.Process (v1, 1.74) forks and execs, one I/O
// thread drains pipes and reaps through pidfds. The traps of Boost.Process
// 1.74 listed in ../shared/deps-facts.md are handled here:
//  - every child gets its own process group and all signals go to the group;
//  - children are reaped with waitpid by us, never with child::terminate();
//  - pipes are made with pipe2(O_CLOEXEC), and the child marks every other
//    inherited descriptor close-on-exec, so children never hold each other's
//    pipes;
//  - SIGCHLD keeps its default disposition and nothing calls waitpid(-1);
//  - exit status and terminating signal are told apart from the raw status.

#include "runtime/process_launcher.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/env.hpp>
#include <boost/process/environment.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>
#include <boost/process/pipe.hpp>
#include <boost/process/search_path.hpp>
#include <boost/process/start_dir.hpp>

#include "config/intervals.hpp"
#include "runtime/error.hpp"
#include "runtime/written_file.hpp"

namespace bp = boost::process;

namespace gpa::rt {

namespace {

using clock_type = std::chrono::steady_clock;

using intervals::orphan_watch;
using intervals::pipe_linger;
using intervals::zombie_sweep;

/// Bytes read from one pipe per wake-up, so one chatty child cannot starve
/// the others.
constexpr size_t read_budget = 1 << 20;

/// Runs in the child between fork and exec. Only async-signal-safe calls.
struct child_setup : bp::extend::handler {
  pid_t parent;
  explicit child_setup(pid_t parent) : parent(parent) {}

  template <class Executor>
  void on_exec_setup(Executor&) const {
    // Own process group: signals reach the tool and everything it forks.
    ::setpgid(0, 0);
    // Die with the agent, even if it is killed with SIGKILL.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    // Blocked and ignored signals survive exec: give the tool a clean slate.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP)
        ::signal(sig, SIG_DFL);
    // Nothing but stdin, stdout and stderr crosses exec.
    ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
  }

  /// The fork happened but the start failed (exec error): reap that child.
  template <class Executor>
  void on_error(Executor& e, const std::error_code&) const {
    if (e.pid > 0) {
      ::kill(e.pid, SIGKILL);
      int status = 0;
      while (::waitpid(e.pid, &status, 0) == -1 && errno == EINTR) {
      }
    }
  }
};

enum class channel : uint64_t { pidfd = 0, out = 1, err = 2 };

uint64_t make_key(uint64_t id, channel ch) {
  return (id << 2) | static_cast<uint64_t>(ch);
}

/// One pipe being drained.
struct drain {
  int fd = -1;
  uint64_t cap = 0;
  std::string data;
  uint64_t total = 0;
};

/// A child from start to report.
struct child_rec {
  uint64_t id = 0;
  pid_t pid = 0;
  int pidfd = -1;
  drain out;
  drain err;
  bool reaped = false;
  int status = 0;
  clock_type::time_point linger_until;
};

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

std::string errno_text(int err) {
  return std::strerror(err);
}

class posix_launcher : public process_launcher {
public:
  posix_launcher() {
    // Grandchildren whose parent died are reparented to us rather than to
    // PID 1 (which in containers often never reaps them), so we can reap them.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epoll_fd_ < 0 || wake_fd_ < 0)
      throw std::runtime_error("process launcher: cannot create epoll: "
                               + errno_text(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = ~uint64_t{0};
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    thread_ = std::thread([this] {
      run();
    });
  }

  ~posix_launcher() override {
    kill_all();
    stopping_ = true;
    wake();
    thread_.join();
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [id, rec] : children_)
      close_all(rec);
    close_fd(epoll_fd_);
    close_fd(wake_fd_);
  }

  void set_exit_handler(exit_handler f) override {
    std::lock_guard<std::mutex> guard{mtx_};
    on_exit_ = std::move(f);
  }

  caf::expected<int32_t> start(uint64_t id, const launch_spec& spec) override {
    if (spec.argv.empty() || spec.argv[0].empty())
      return make_gpa_error(ec::invalid_request, "empty command line");
    // Resolve the program now, so "not found" is a clear error.
    boost::filesystem::path exe = spec.argv[0];
    if (spec.argv[0].find('/') == std::string::npos) {
      exe = bp::search_path(spec.argv[0]);
      if (exe.empty())
        return make_gpa_error(ec::spawn_failed, "cannot start '" + spec.argv[0]
                                                    + "': not found in PATH");
    }
    int out_pipe[2] = {-1, -1};
    int err_pipe[2] = {-1, -1};
    int out_file = -1;
    auto cleanup = [&] {
      close_fd(out_pipe[0]);
      close_fd(out_pipe[1]);
      close_fd(err_pipe[0]);
      close_fd(err_pipe[1]);
      close_fd(out_file);
    };
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
      auto err = errno;
      cleanup();
      return make_gpa_error(ec::spawn_failed,
                            "cannot make a pipe: " + errno_text(err));
    }
    if (spec.out_mode == stdout_mode::capture) {
      if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        auto err = errno;
        cleanup();
        return make_gpa_error(ec::spawn_failed,
                              "cannot make a pipe: " + errno_text(err));
      }
    } else if (spec.out_mode == stdout_mode::file) {
      // A fresh file of ours (O_EXCL), as every file the agent writes.
      auto created = open_written_file(spec.out_path, if_exists::fail, 0600);
      if (!created) {
        cleanup();
        return make_gpa_error(ec::spawn_failed,
                              "cannot create output file: "
                                  + message_of(created.error()));
      }
      out_file = created->release();
    }
    // Build the environment before forking.
    bp::environment env;
    if (!spec.replace_env)
      for (auto entry : boost::this_process::environment())
        env[entry.get_name()] = entry.to_string();
    for (auto& entry : spec.env) {
      auto eq = entry.find('=');
      if (eq == std::string::npos || eq == 0)
        continue;
      env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    std::vector<std::string> args(spec.argv.begin() + 1, spec.argv.end());
    std::error_code error;
    bp::child child;
    // Held from fork to registration, so the zombie sweep in the I/O thread
    // never mistakes a fresh child for an adopted orphan.
    std::unique_lock<std::mutex> guard{mtx_};
    {
      // bp::pipe takes ownership of both ends; pipe_out closes the write end
      // in the parent once the child runs. We keep the read end.
      bp::pipe errp(err_pipe[0], err_pipe[1]);
      err_pipe[0] = err_pipe[1] = -1;
      auto err_redirect = bp::std_err > errp;
      child_setup setup{::getpid()};
      auto start_dir = spec.cwd.empty() ? boost::filesystem::current_path()
                                        : boost::filesystem::path{spec.cwd};
      if (spec.out_mode == stdout_mode::capture) {
        bp::pipe outp(out_pipe[0], out_pipe[1]);
        out_pipe[0] = out_pipe[1] = -1;
        child = bp::child(bp::exe = exe, bp::args = args, bp::env = env,
                          bp::start_dir = start_dir,
                          bp::std_in<bp::null, bp::std_out> outp, err_redirect,
                          error, setup);
        out_pipe[0] = outp.native_source();
        outp.assign_source(-1);
      } else if (spec.out_mode == stdout_mode::file) {
        bp::pipe filep(-1, out_file);
        out_file = -1;
        child = bp::child(bp::exe = exe, bp::args = args, bp::env = env,
                          bp::start_dir = start_dir,
                          bp::std_in<bp::null, bp::std_out> filep, err_redirect,
                          error, setup);
      } else {
        child = bp::child(bp::exe = exe, bp::args = args, bp::env = env,
                          bp::start_dir = start_dir,
                          bp::std_in<bp::null, bp::std_out> bp::null,
                          err_redirect, error, setup);
      }
      err_pipe[0] = errp.native_source();
      errp.assign_source(-1);
    }
    if (error) {
      guard.unlock();
      cleanup();
      if (spec.out_mode == stdout_mode::file)
        ::unlink(spec.out_path.c_str());
      return make_gpa_error(ec::spawn_failed, "cannot start '" + spec.argv[0]
                                                  + "': " + error.message());
    }
    pid_t pid = child.id();
    // We reap the child ourselves; the child object must not touch it.
    child.detach();
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      auto err = errno;
      guard.unlock();
      ::kill(-pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) == -1 && errno == EINTR) {
      }
      cleanup();
      return make_gpa_error(ec::spawn_failed, "cannot watch child: pidfd_open: "
                                                  + errno_text(err));
    }
    for (int fd : {out_pipe[0], err_pipe[0]})
      if (fd >= 0)
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    auto& rec = children_[id];
    rec.id = id;
    rec.pid = pid;
    rec.pidfd = pidfd;
    rec.out.fd = out_pipe[0];
    rec.out.cap = spec.out_cap;
    rec.err.fd = err_pipe[0];
    rec.err.cap = spec.err_cap;
    out_pipe[0] = err_pipe[0] = -1;
    watch(rec.pidfd, make_key(id, channel::pidfd));
    watch(rec.out.fd, make_key(id, channel::out));
    watch(rec.err.fd, make_key(id, channel::err));
    return static_cast<int32_t>(pid);
  }

  bool signal(uint64_t id, int sig) override {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = children_.find(id);
    if (i == children_.end() || i->second.reaped)
      return false;
    // The child is not reaped yet, so its process group ID is still ours.
    ::kill(-i->second.pid, sig);
    return true;
  }

  launcher_counts counts() const override {
    std::lock_guard<std::mutex> guard{mtx_};
    launcher_counts result;
    for (auto& [id, rec] : children_) {
      if (!rec.reaped)
        ++result.live;
      for (int fd : {rec.pidfd, rec.out.fd, rec.err.fd})
        if (fd >= 0)
          ++result.fds;
    }
    return result;
  }

  void kill_all() override {
    std::unique_lock<std::mutex> guard{mtx_};
    for (auto& [id, rec] : children_)
      if (!rec.reaped)
        ::kill(-rec.pid, SIGKILL);
    all_gone_.wait_for(guard, intervals::kill_all_wait, [this] {
      return children_.empty();
    });
  }

private:
  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
  }

  void watch(int fd, uint64_t key) {
    if (fd < 0)
      return;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = key;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }

  void unwatch(int& fd) {
    if (fd < 0)
      return;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    close_fd(fd);
  }

  void close_all(child_rec& rec) {
    unwatch(rec.pidfd);
    unwatch(rec.out.fd);
    unwatch(rec.err.fd);
  }

  /// Reads what is there, keeping up to the cap. Closes the pipe at EOF.
  void read_some(drain& d) {
    char buf[65536];
    size_t budget = read_budget;
    while (d.fd >= 0 && budget > 0) {
      auto n = ::read(d.fd, buf, sizeof(buf));
      if (n > 0) {
        auto got = static_cast<uint64_t>(n);
        d.total += got;
        budget -= std::min<size_t>(budget, got);
        if (d.data.size() < d.cap)
          d.data.append(buf, std::min<uint64_t>(got, d.cap - d.data.size()));
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return;
      unwatch(d.fd); // EOF or a hard error
    }
  }

  /// The child exited: clean up its group, reap it, start the linger time.
  void reap(child_rec& rec) {
    // Leftovers of the tool's process group (grandchildren) go with it. The
    // leader is a zombie until waitpid, so its group ID cannot be reused yet.
    ::kill(-rec.pid, SIGKILL);
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(rec.pid, &status, 0);
    } while (r == -1 && errno == EINTR);
    rec.status = status;
    rec.reaped = true;
    unwatch(rec.pidfd);
    rec.linger_until = clock_type::now() + pipe_linger;
    orphan_groups_.emplace_back(rec.pid, clock_type::now() + orphan_watch);
  }

  /// Reaps adopted members of finished children's process groups, and now
  /// and then any other adopted zombie. Never reaps a tracked child.
  void reap_orphans() {
    auto now = clock_type::now();
    for (auto i = orphan_groups_.begin(); i != orphan_groups_.end();) {
      siginfo_t info{};
      while (::waitid(P_PGID, static_cast<id_t>(i->first), &info,
                      WEXITED | WNOHANG)
                 == 0
             && info.si_pid != 0)
        info = siginfo_t{};
      bool empty = ::kill(-i->first, 0) != 0 && errno == ESRCH;
      if (empty || now >= i->second)
        i = orphan_groups_.erase(i);
      else
        ++i;
    }
    if (now < next_sweep_)
      return;
    next_sweep_ = now + zombie_sweep;
    for (;;) {
      siginfo_t info{};
      if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0
          || info.si_pid == 0)
        return;
      bool tracked
          = std::any_of(children_.begin(), children_.end(), [&](auto& kv) {
              return kv.second.pid == info.si_pid;
            });
      if (tracked)
        return; // its pidfd will report it; look again at the next sweep
      int status = 0;
      ::waitpid(info.si_pid, &status, WNOHANG);
    }
  }

  void run() {
    epoll_event events[64];
    while (!stopping_) {
      int timeout = -1;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        for (auto& [id, rec] : children_)
          if (rec.reaped)
            timeout = 20;
        if (!orphan_groups_.empty())
          timeout = 20;
      }
      int n = ::epoll_wait(epoll_fd_, events, 64, timeout);
      std::vector<child_exit> done;
      exit_handler handler;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        for (int k = 0; k < n; ++k) {
          auto key = events[k].data.u64;
          if (key == ~uint64_t{0}) {
            uint64_t x;
            [[maybe_unused]] auto r = ::read(wake_fd_, &x, sizeof(x));
            continue;
          }
          auto i = children_.find(key >> 2);
          if (i == children_.end())
            continue;
          auto& rec = i->second;
          switch (static_cast<channel>(key & 3)) {
            case channel::pidfd:
              // Drain first: output written just before exit is kept.
              read_some(rec.out);
              read_some(rec.err);
              reap(rec);
              break;
            case channel::out: read_some(rec.out); break;
            case channel::err: read_some(rec.err); break;
          }
        }
        auto now = clock_type::now();
        for (auto i = children_.begin(); i != children_.end();) {
          auto& rec = i->second;
          bool pipes_done = rec.out.fd < 0 && rec.err.fd < 0;
          if (rec.reaped && (pipes_done || now >= rec.linger_until)) {
            read_some(rec.out);
            read_some(rec.err);
            close_all(rec);
            child_exit report;
            report.id = rec.id;
            report.wait_status = rec.status;
            report.out_bytes = rec.out.total;
            report.out_truncated = rec.out.total > rec.out.data.size();
            report.out = std::move(rec.out.data);
            report.err_truncated = rec.err.total > rec.err.data.size();
            report.err = std::move(rec.err.data);
            done.push_back(std::move(report));
            i = children_.erase(i);
          } else {
            ++i;
          }
        }
        reap_orphans();
        handler = on_exit_;
        if (children_.empty())
          all_gone_.notify_all();
      }
      for (auto& report : done)
        if (handler)
          handler(std::move(report));
    }
  }

  mutable std::mutex mtx_;
  std::condition_variable all_gone_;
  std::unordered_map<uint64_t, child_rec> children_;
  exit_handler on_exit_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  /// Process groups of reaped children, watched for adopted members.
  std::vector<std::pair<pid_t, clock_type::time_point>> orphan_groups_;
  clock_type::time_point next_sweep_;
  std::thread thread_;
};

} // namespace

std::unique_ptr<process_launcher> make_posix_launcher() {
  return std::make_unique<posix_launcher>();
}

} // namespace gpa::rt

namespace gpa {

std::string to_string(stdout_mode x) {
  switch (x) {
    case stdout_mode::capture: return "capture";
    case stdout_mode::file: return "file";
    case stdout_mode::discard: return "discard";
  }
  return "unknown";
}

} // namespace gpa
