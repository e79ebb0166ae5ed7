#pragma once

// Counts of what the test process owns, read from /proc: open descriptors
// and child processes.

#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <string>
#include <unistd.h>

namespace gpa::test {

/// Entries in /proc/self/fd (the directory handle itself not counted).
inline int count_fds() {
  int n = 0;
  auto dir = ::opendir("/proc/self/fd");
  while (auto e = ::readdir(dir))
    if (e->d_name[0] != '.')
      ++n;
  ::closedir(dir);
  return n - 1;
}

/// Processes whose parent is this process (zombies included).
inline int count_children() {
  int n = 0;
  auto self = ::getpid();
  auto dir = ::opendir("/proc");
  while (auto e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    std::ifstream in(std::string{"/proc/"} + e->d_name + "/stat");
    std::string line;
    if (!std::getline(in, line))
      continue;
    auto close = line.rfind(')');
    if (close == std::string::npos)
      continue;
    // After "pid (comm) ": state, then ppid.
    auto rest = line.substr(close + 2);
    auto space = rest.find(' ');
    auto ppid = std::atoi(rest.c_str() + space + 1);
    if (ppid == self)
      ++n;
  }
  ::closedir(dir);
  return n;
}

/// Whether any process is left in process group `pgid` after waiting up to
/// two seconds for killed members to be gone.
inline bool group_alive(int pgid) {
  for (int i = 0; i < 200; ++i) {
    if (::kill(-pgid, 0) != 0)
      return false;
    ::usleep(10000);
  }
  return true;
}

} // namespace gpa::test
