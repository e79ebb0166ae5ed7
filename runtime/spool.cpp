#include "runtime/spool.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"

namespace gpa::rt {

namespace {

constexpr const char* suffix = ".prof";
constexpr const char* temp_prefix = ".tmp.";
constexpr size_t seq_digits = 20;

std::string errno_text(int err) {
  return std::strerror(err);
}

caf::error fail(const std::string& what, int err, const std::string& hint) {
  std::string msg = what + ": " + errno_text(err);
  if (!hint.empty())
    msg += "; " + hint;
  return make_gpa_error(ec::write_failed, std::move(msg));
}

std::string hint_for(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT: return "free disk space or lower --spool-max-size";
    case EROFS:
    case EACCES:
    case EPERM: return "make it writable or choose another --spool-dir";
    case ELOOP:
    case ENOTDIR: return "it must be a real directory, not a symlink";
    default: return "";
  }
}

/// Parses "<20 digits>.prof"; returns 0 for anything else.
uint64_t parse_name(const char* name) {
  auto len = std::strlen(name);
  if (len != seq_digits + std::strlen(suffix)
      || std::strcmp(name + seq_digits, suffix) != 0)
    return 0;
  uint64_t seq = 0;
  for (size_t i = 0; i < seq_digits; ++i) {
    if (name[i] < '0' || name[i] > '9')
      return 0;
    seq = seq * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return seq;
}

/// Creates the missing parents of `dir` (0755, like mkdir -p).
void make_parents(const std::string& dir) {
  for (size_t pos = 1; (pos = dir.find('/', pos)) != std::string::npos; ++pos) {
    auto parent = dir.substr(0, pos);
    ::mkdir(parent.c_str(), 0755);
  }
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

} // namespace

std::string spool_entry::name() const {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020" PRIu64 "%s", seq, suffix);
  return buf;
}

spool::spool(std::string path, int dir_fd, spool_limits limits)
    : path_(std::move(path)), dir_fd_(dir_fd), limits_(limits) {}

spool::~spool() {
  if (dir_fd_ >= 0)
    ::close(dir_fd_);
}

caf::expected<std::shared_ptr<spool>> spool::open(const std::string& dir,
                                                  spool_limits limits) {
  if (dir.empty())
    return make_gpa_error(ec::invalid_request,
                          "no spool directory given (--spool-dir)");
  std::string path = dir;
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  if (::mkdir(path.c_str(), 0700) != 0 && errno == ENOENT) {
    make_parents(path);
    ::mkdir(path.c_str(), 0700);
  }
  int fd
      = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    auto err = errno;
    return fail("cannot open spool directory " + path, err, hint_for(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
    ::close(fd);
    return make_gpa_error(ec::write_failed,
                          "spool directory " + path + " is not a directory");
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    return make_gpa_error(ec::write_failed,
                          "spool directory " + path + " belongs to uid "
                              + std::to_string(st.st_uid)
                              + ", not to us; remove it or choose another "
                                "--spool-dir");
  }
  if ((st.st_mode & 0777) != 0700 && ::fchmod(fd, 0700) != 0) {
    auto err = errno;
    ::close(fd);
    return fail("cannot make spool directory " + path + " private (0700)", err,
                hint_for(err));
  }
  std::shared_ptr<spool> result{new spool(path, fd, limits)};
  if (auto err = result->scan())
    return err;
  return result;
}

caf::error spool::scan() {
  int fd = ::dup(dir_fd_);
  if (fd < 0)
    return fail("cannot list spool directory " + path_, errno, "");
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    auto err = errno;
    ::close(fd);
    return fail("cannot list spool directory " + path_, err, "");
  }
  ::rewinddir(d);
  std::vector<std::string> temps;
  while (auto* ent = ::readdir(d)) {
    const char* name = ent->d_name;
    if (std::strncmp(name, temp_prefix, std::strlen(temp_prefix)) == 0) {
      temps.emplace_back(name);
      continue;
    }
    auto seq = parse_name(name);
    if (seq == 0)
      continue; // not ours: left alone
    struct stat st;
    if (::fstatat(dir_fd_, name, &st, AT_SYMLINK_NOFOLLOW) != 0
        || !S_ISREG(st.st_mode))
      continue; // a symlink or device under our name is never read
    entries_[seq] = static_cast<uint64_t>(st.st_size);
    bytes_ += static_cast<uint64_t>(st.st_size);
    next_seq_ = std::max(next_seq_, seq + 1);
  }
  ::closedir(d);
  // A temporary is a write that never completed (crash, full disk).
  for (auto& name : temps)
    ::unlinkat(dir_fd_, name.c_str(), 0);
  return caf::none;
}

caf::expected<spool_push_result> spool::push(std::string_view data) {
  if (limits_.max_files == 0)
    return make_gpa_error(ec::write_failed,
                          "spooling is disabled (--spool-max-files 0)");
  if (data.size() > limits_.max_bytes)
    return make_gpa_error(ec::write_failed,
                          "entry of " + std::to_string(data.size())
                              + " bytes exceeds the spool's limit of "
                              + std::to_string(limits_.max_bytes)
                              + " bytes (--spool-max-size)");
  spool_entry entry;
  entry.seq = next_seq_++;
  entry.bytes = data.size();
  auto final_name = entry.name();
  auto temp_name = std::string{temp_prefix} + final_name;
  int fd = ::openat(dir_fd_, temp_name.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    auto err = errno;
    return fail("cannot create " + path_ + "/" + temp_name, err, hint_for(err));
  }
  bool ok = write_all(fd, data) && ::fsync(fd) == 0;
  auto err = errno;
  ::close(fd);
  if (!ok) {
    ::unlinkat(dir_fd_, temp_name.c_str(), 0);
    return fail("cannot write " + path_ + "/" + temp_name, err, hint_for(err));
  }
  if (::renameat(dir_fd_, temp_name.c_str(), dir_fd_, final_name.c_str())
      != 0) {
    err = errno;
    ::unlinkat(dir_fd_, temp_name.c_str(), 0);
    return fail("cannot rename " + temp_name + " in " + path_, err,
                hint_for(err));
  }
  // Make the rename itself durable.
  ::fsync(dir_fd_);
  entries_[entry.seq] = entry.bytes;
  bytes_ += entry.bytes;
  spool_push_result result;
  result.entry = entry;
  while (entries_.size() > limits_.max_files || bytes_ > limits_.max_bytes) {
    auto oldest = entries_.begin();
    if (oldest->first == entry.seq)
      break; // cannot happen: the entry alone fits
    spool_entry victim{oldest->first, oldest->second};
    remove(victim);
    ++result.dropped;
  }
  return result;
}

std::optional<spool_entry> spool::oldest() const {
  if (entries_.empty())
    return std::nullopt;
  return spool_entry{entries_.begin()->first, entries_.begin()->second};
}

std::vector<spool_entry> spool::list() const {
  std::vector<spool_entry> result;
  result.reserve(entries_.size());
  for (auto& [seq, bytes] : entries_)
    result.push_back(spool_entry{seq, bytes});
  return result;
}

caf::expected<std::string> spool::read(const spool_entry& entry) const {
  auto name = entry.name();
  int fd = ::openat(dir_fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return fail("cannot open " + path_ + "/" + name, errno, "");
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)
      || static_cast<uint64_t>(st.st_size) > limits_.max_bytes) {
    ::close(fd);
    return make_gpa_error(ec::write_failed, path_ + "/" + name
                                                + " is not a regular file "
                                                  "within the spool's size "
                                                  "limit");
  }
  std::string data;
  data.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < data.size()) {
    auto n = ::read(fd, &data[got], data.size() - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  return data;
}

caf::error spool::remove(const spool_entry& entry) {
  auto i = entries_.find(entry.seq);
  if (i != entries_.end()) {
    bytes_ -= i->second;
    entries_.erase(i);
  }
  auto name = entry.name();
  if (::unlinkat(dir_fd_, name.c_str(), 0) != 0 && errno != ENOENT) {
    auto err = errno;
    return fail("cannot remove " + path_ + "/" + name, err, hint_for(err));
  }
  return caf::none;
}

} // namespace gpa::rt
