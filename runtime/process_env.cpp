#include "runtime/process_env.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

private_temp_dir::private_temp_dir(const std::string& root) {
  std::string templ = root + "/gprofiler-agent.XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr)
    throw std::runtime_error("cannot create a temporary directory in " + root
                             + ": " + std::strerror(errno));
  path_ = templ;
}

private_temp_dir::~private_temp_dir() {
  remove_tree(path_);
}

void remove_tree(const std::string& path) {
  if (path.empty())
    return;
  ::nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int type, struct FTW*) {
        if (type == FTW_DP)
          ::rmdir(p);
        else
          ::unlink(p);
        return 0;
      },
      16, FTW_DEPTH | FTW_PHYS);
}

pid_file::pid_file(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot open PID file " + path + ": "
                             + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    auto n = ::pread(fd_, buf, sizeof(buf) - 1, 0);
    std::string other = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!other.empty() && (other.back() == '\n' || other.back() == ' '))
      other.pop_back();
    ::close(fd_);
    fd_ = -1;
    path_.clear(); // not ours to remove
    throw std::runtime_error("another gprofiler-agent is running (PID " + other
                             + ", holds " + path
                             + "); one instance per host, or give another "
                               "--pid-file");
  }
  auto text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0
      || ::pwrite(fd_, text.data(), text.size(), 0)
             != static_cast<ssize_t>(text.size())) {
    auto err = errno;
    ::unlink(path.c_str());
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("cannot write PID file " + path + ": "
                             + std::strerror(err));
  }
}

pid_file::~pid_file() {
  if (fd_ >= 0) {
    ::unlink(path_.c_str());
    ::close(fd_);
  }
}

} // namespace gpa::rt
