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

/// What a directory entry's name says it is.
enum class name_kind { other, entry, invalid_entry };

/// Parses "<20 digits>.prof" into `seq`: an entry if the number is in
/// [1, spool::max_seq] (the first digit is 0, so it never overflows), an
/// invalid entry if it is shaped like one but out of range, else other.
name_kind parse_name(const char* name, uint64_t& seq) {
  auto len = std::strlen(name);
  if (len != seq_digits + std::strlen(suffix)
      || std::strcmp(name + seq_digits, suffix) != 0)
    return name_kind::other;
  seq = 0;
  for (size_t i = 0; i < seq_digits; ++i)
    if (name[i] < '0' || name[i] > '9')
      return name_kind::other;
  if (name[0] != '0')
    return name_kind::invalid_entry;
  for (size_t i = 1; i < seq_digits; ++i)
    seq = seq * 10 + static_cast<uint64_t>(name[i] - '0');
  return seq == 0 ? name_kind::invalid_entry : name_kind::entry;
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
    : path_(std::move(path)), dir_fd_(dir_fd), limits_(limits) {
  limits_.max_files = std::max<uint64_t>(limits_.max_files, 1);
}

std::shared_ptr<spool> spool::in_memory(spool_limits limits, std::string name) {
  // Every entry is in memory: the byte bound is the memory bound.
  limits.max_memory_bytes = limits.max_bytes;
  return std::shared_ptr<spool>{new spool(std::move(name), -1, limits)};
}

size_t spool::in_memory_count() const {
  return static_cast<size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](auto& e) {
        return e.second.memory.has_value();
      }));
}

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
  // Temporaries are writes that never completed (crash, full disk); names
  // shaped like entries but out of range would wrap: both are removed.
  std::vector<std::string> garbage;
  while (auto* ent = ::readdir(d)) {
    const char* name = ent->d_name;
    if (std::strncmp(name, temp_prefix, std::strlen(temp_prefix)) == 0) {
      garbage.emplace_back(name);
      continue;
    }
    uint64_t seq = 0;
    auto kind = parse_name(name, seq);
    if (kind == name_kind::other)
      continue; // not ours: left alone
    if (kind == name_kind::invalid_entry) {
      garbage.emplace_back(name);
      continue;
    }
    struct stat st;
    if (::fstatat(dir_fd_, name, &st, AT_SYMLINK_NOFOLLOW) != 0
        || !S_ISREG(st.st_mode))
      continue; // a symlink or device under our name is never read
    entries_[seq].bytes = static_cast<uint64_t>(st.st_size);
    bytes_ += static_cast<uint64_t>(st.st_size);
    next_seq_ = std::max(next_seq_, seq + 1);
  }
  ::closedir(d);
  for (auto& name : garbage)
    ::unlinkat(dir_fd_, name.c_str(), 0);
  if (next_seq_ > max_seq)
    return renumber();
  return caf::none;
}

caf::error spool::renumber() {
  uint64_t seq = 0;
  std::map<uint64_t, held> renumbered;
  for (auto& [old_seq, entry] : entries_) {
    ++seq;
    if (!entry.memory && old_seq != seq) {
      auto from = spool_entry{old_seq, 0}.name();
      auto to = spool_entry{seq, 0}.name();
      if (::renameat(dir_fd_, from.c_str(), dir_fd_, to.c_str()) != 0)
        return fail("cannot renumber " + path_ + "/" + from, errno, "");
    }
    renumbered[seq] = std::move(entry);
  }
  entries_ = std::move(renumbered);
  next_seq_ = seq + 1;
  if (dir_fd_ >= 0)
    ::fsync(dir_fd_);
  return caf::none;
}

caf::error spool::write_file(uint64_t seq, std::string_view data) {
  auto final_name = spool_entry{seq, 0}.name();
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
  return caf::none;
}

caf::expected<spool_push_result> spool::push(std::string_view data) {
  if (data.size() > limits_.max_bytes)
    return make_gpa_error(ec::write_failed,
                          "entry of " + std::to_string(data.size())
                              + " bytes exceeds the spool's limit of "
                              + std::to_string(limits_.max_bytes)
                              + " bytes (--spool-max-size)");
  if (next_seq_ > max_seq)
    if (auto err = renumber())
      return err;
  spool_push_result result;
  result.entry.seq = next_seq_;
  result.entry.bytes = data.size();
  held entry;
  entry.bytes = data.size();
  caf::error not_durable;
  if (dir_fd_ >= 0)
    not_durable = write_file(next_seq_, data);
  else
    not_durable = make_gpa_error(ec::write_failed,
                                 "the spool " + path_ + " is in memory only");
  if (not_durable) {
    // Not on disk: kept in memory, so that it is still sent (but lost if
    // the agent dies first).
    if (memory_bytes_ + data.size() > limits_.max_memory_bytes)
      return make_gpa_error(
          ec::write_failed,
          describe(not_durable) + "; and the "
              + std::to_string(limits_.max_memory_bytes)
              + " bytes of memory for entries that cannot be written are "
                "used up");
    entry.memory = std::string{data};
    memory_bytes_ += data.size();
    result.durable = false;
    result.not_durable_because = describe(not_durable);
  }
  ++next_seq_;
  entries_[result.entry.seq] = std::move(entry);
  bytes_ += data.size();
  while (entries_.size() > limits_.max_files || bytes_ > limits_.max_bytes) {
    auto oldest = entries_.begin();
    if (oldest->first == result.entry.seq)
      break; // cannot happen: the entry alone fits
    remove(spool_entry{oldest->first, oldest->second.bytes});
    ++result.dropped;
  }
  return result;
}

std::optional<spool_entry> spool::oldest() const {
  if (entries_.empty())
    return std::nullopt;
  return spool_entry{entries_.begin()->first, entries_.begin()->second.bytes};
}

std::vector<spool_entry> spool::list() const {
  std::vector<spool_entry> result;
  result.reserve(entries_.size());
  for (auto& [seq, entry] : entries_)
    result.push_back(spool_entry{seq, entry.bytes});
  return result;
}

caf::expected<std::string> spool::read(const spool_entry& entry) const {
  if (auto i = entries_.find(entry.seq);
      i != entries_.end() && i->second.memory)
    return *i->second.memory;
  if (dir_fd_ < 0)
    return make_gpa_error(ec::write_failed,
                          "no entry " + entry.name() + " in " + path_);
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
    bytes_ -= i->second.bytes;
    bool in_memory = i->second.memory.has_value();
    if (in_memory)
      memory_bytes_ -= i->second.bytes;
    entries_.erase(i);
    if (in_memory || dir_fd_ < 0)
      return caf::none;
  }
  if (dir_fd_ < 0)
    return caf::none;
  auto name = entry.name();
  if (::unlinkat(dir_fd_, name.c_str(), 0) != 0 && errno != ENOENT) {
    auto err = errno;
    return fail("cannot remove " + path_ + "/" + name, err, hint_for(err));
  }
  return caf::none;
}

} // namespace gpa::rt
