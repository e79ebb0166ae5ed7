#include "runtime/written_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/files.hpp"

namespace gpa::rt {

namespace {

caf::error refuse(const std::string& path, const std::string& why) {
  return make_gpa_error(ec::write_failed, "cannot write " + path + ": " + why);
}

std::string kind_text(const struct stat& st) {
  return std::string{"it is "} + file_kind_name(st.st_mode)
         + ", not a regular file; refusing to use it";
}

/// Why the regular file `st` may not be written, or "".
std::string unusable(const struct stat& st) {
  if (!S_ISREG(st.st_mode))
    return kind_text(st);
  if (st.st_nlink > 1)
    return "it has " + std::to_string(st.st_nlink)
           + " hard links (another name for the same file); refusing to use "
             "it";
  return {};
}

} // namespace

const char* file_kind_name(unsigned mode) {
  if (S_ISREG(mode))
    return "a regular file";
  if (S_ISDIR(mode))
    return "a directory";
  if (S_ISLNK(mode))
    return "a symbolic link";
  if (S_ISFIFO(mode))
    return "a FIFO";
  if (S_ISSOCK(mode))
    return "a socket";
  if (S_ISCHR(mode))
    return "a character device";
  if (S_ISBLK(mode))
    return "a block device";
  return "not a regular file";
}

// -- written_file
// --------------------------------------------------------------

written_file::written_file(written_file&& other) noexcept {
  *this = std::move(other);
}

written_file& written_file::operator=(written_file&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    created_ = other.created_;
    dev_ = other.dev_;
    ino_ = other.ino_;
  }
  return *this;
}

written_file::~written_file() {
  close();
}

bool written_file::still_at(const std::string& path) const {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && st.st_dev == dev_
         && st.st_ino == ino_;
}

int written_file::release() {
  return std::exchange(fd_, -1);
}

void written_file::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

caf::expected<written_file> open_written_file(const std::string& path,
                                              if_exists how, unsigned mode,
                                              bool read) {
  if (path.empty())
    return refuse("\"\"", "empty file name");
  // O_NONBLOCK: a FIFO must not block the open (the type check refuses it);
  // O_NOFOLLOW: a symbolic link as the last component fails with ELOOP.
  int flags = (read ? O_RDWR : O_WRONLY) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY
              | O_CLOEXEC;
  written_file result;
  for (int attempt = 0; attempt < 3 && result.fd_ < 0; ++attempt) {
    int fd = ::open(path.c_str(), flags | O_CREAT | O_EXCL,
                    static_cast<mode_t>(mode));
    if (fd >= 0) {
      result.fd_ = fd;
      result.created_ = true;
      break;
    }
    if (errno != EEXIST)
      return refuse(path, std::strerror(errno));
    // It exists: look before opening, so that a device node is never
    // opened at all (opening some devices has effects of its own).
    struct stat before {};
    if (::lstat(path.c_str(), &before) != 0) {
      if (errno == ENOENT)
        continue; // removed meanwhile: create it
      return refuse(path, std::strerror(errno));
    }
    if (how == if_exists::fail)
      return refuse(path, S_ISREG(before.st_mode) ? "it exists already"
                                                  : kind_text(before));
    if (auto why = unusable(before); !why.empty())
      return refuse(path, why);
    fd = ::open(path.c_str(), flags);
    if (fd < 0) {
      if (errno == ENOENT)
        continue;
      if (errno == ELOOP)
        return refuse(path, "it is a symbolic link; refusing to write through "
                            "it");
      return refuse(path, std::strerror(errno));
    }
    result.fd_ = fd;
  }
  if (result.fd_ < 0)
    return refuse(path, "it keeps appearing and disappearing");
  // What was opened is what counts: it may have been swapped since lstat.
  struct stat st {};
  if (::fstat(result.fd_, &st) != 0)
    return refuse(path, std::strerror(errno));
  if (auto why = unusable(st); !why.empty())
    return refuse(path, why);
  result.dev_ = st.st_dev;
  result.ino_ = st.st_ino;
  // Regular files never block; writes are plain from here on.
  int fl = ::fcntl(result.fd_, F_GETFL);
  if (fl >= 0)
    ::fcntl(result.fd_, F_SETFL, fl & ~O_NONBLOCK);
  return result;
}

// -- directory trees
// ------------------------------------------------------------

namespace {

/// Directories deeper than this are left in place (the agent makes none
/// deeper than 2; this only bounds the recursion).
constexpr int max_tree_depth = 64;

bool remove_tree_rec(int dir_fd, const char* name, int depth) {
  // A file, a symbolic link (the link itself), a FIFO...: unlinked.
  if (::unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT)
    return true;
  if (errno != EISDIR && errno != EPERM)
    return false;
  if (depth >= max_tree_depth)
    return false;
  int fd
      = ::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return false;
  }
  std::vector<std::string> names;
  while (auto e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.emplace_back(e->d_name);
  }
  bool ok = true;
  for (auto& n : names)
    ok = remove_tree_rec(::dirfd(d), n.c_str(), depth + 1) && ok;
  ::closedir(d);
  if (::unlinkat(dir_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
    ok = false;
  return ok;
}

} // namespace

bool remove_tree_at(int dir_fd, const std::string& name) {
  if (name.empty() || name == "." || name == ".."
      || name.find('/') != std::string::npos)
    return false;
  return remove_tree_rec(dir_fd, name.c_str(), 0);
}

// -- temporary directories of dead agents
// ---------------------------------------

std::vector<std::string> remove_stale_temp_dirs(const std::string& root) {
  std::vector<std::string> removed;
  int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0)
    return removed;
  DIR* d = ::fdopendir(root_fd);
  if (d == nullptr) {
    ::close(root_fd);
    return removed;
  }
  std::string prefix = temp_dir_prefix;
  std::vector<std::string> candidates;
  while (auto e = ::readdir(d)) {
    std::string name = e->d_name;
    // mkdtemp's names: the prefix and six characters.
    if (name.size() == prefix.size() + 6
        && name.compare(0, prefix.size(), prefix) == 0)
      candidates.push_back(std::move(name));
  }
  int dfd_root = ::dirfd(d);
  for (auto& name : candidates) {
    struct stat st {};
    if (::fstatat(dfd_root, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    // Ours: a real directory of this user, private as mkdtemp makes it.
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()
        || (st.st_mode & 07777) != 0700)
      continue;
    int dir_fd = ::openat(dfd_root, name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir_fd < 0)
      continue;
    struct stat dst {};
    struct stat lst {};
    bool stale = false;
    int lock_fd = -1;
    if (::fstat(dir_fd, &dst) == 0 && dst.st_ino == st.st_ino
        && dst.st_dev == st.st_dev
        && ::fstatat(dir_fd, temp_lock_name, &lst, AT_SYMLINK_NOFOLLOW) == 0
        && S_ISREG(lst.st_mode)) {
      lock_fd
          = ::openat(dir_fd, temp_lock_name,
                     O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
      // A live agent holds its lock for its whole life.
      stale = lock_fd >= 0 && ::flock(lock_fd, LOCK_EX | LOCK_NB) == 0;
    }
    // Removed while its lock is held (by us now): a second agent starting
    // at the same moment waits or skips it.
    if (stale && remove_tree_at(dfd_root, name))
      removed.push_back(name);
    if (lock_fd >= 0)
      ::close(lock_fd);
    ::close(dir_fd);
  }
  ::closedir(d);
  return removed;
}

// -- output directory
// ----------------------------------------------------------

std::string check_output_dir(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return "cannot use output directory " + dir + ": " + std::strerror(errno);
    if (auto err = make_posix_file_system()->make_dirs(dir, 0755))
      return "cannot create output directory " + dir + ": " + message_of(err);
    if (::lstat(dir.c_str(), &st) != 0)
      return "cannot use output directory " + dir + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(st.st_mode))
    return "cannot use output directory " + dir + ": it is "
           + file_kind_name(st.st_mode) + ", not a directory";
  // A probe file: permission bits say little as root (a read-only mount, an
  // immutable directory, a full inode table say more).
  auto probe = dir + "/.gprofiler-agent-probe." + std::to_string(::getpid());
  auto f = open_written_file(probe, if_exists::fail, 0600);
  if (!f)
    return "cannot write into output directory " + dir + ": "
           + message_of(f.error());
  ::unlink(probe.c_str());
  return {};
}

} // namespace gpa::rt
