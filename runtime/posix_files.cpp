#include "runtime/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/written_file.hpp"

namespace gpa::rt {

int open_in_root(const std::string& root, const std::string& path, int flags) {
  int dfd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return -1;
  fd_guard dguard{dfd};
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  // O_PATH takes no other flags in openat2 (EINVAL).
  if (!(flags & O_PATH))
    flags |= O_NOCTTY;
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dfd, path.c_str(), &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) {
    std::string rel = path;
    while (!rel.empty() && rel.front() == '/')
      rel.erase(0, 1);
    fd = ::openat(dfd, rel.c_str(), flags | O_CLOEXEC | O_NOFOLLOW);
  }
  return static_cast<int>(fd);
}

fd_guard::~fd_guard() {
  if (fd >= 0)
    ::close(fd);
}

namespace {

caf::error sys_error(const std::string& what, const std::string& path,
                     int err) {
  return make_gpa_error(ec::write_failed,
                        what + " " + path + ": " + std::strerror(err));
}

std::string temp_name(const std::string& base) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof(buf), ".%016llx.tmp",
                static_cast<unsigned long long>(rng()));
  return "." + base + buf;
}

} // namespace

int read_fd_chunks(int fd, const std::function<void(std::string_view)>& f,
                   size_t chunk) {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return errno;
  if (S_ISDIR(st.st_mode))
    return EISDIR;
  // A regular file is mapped: no copy from the page cache (the converter
  // reads perf script's output about twice as fast this way).
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    auto size = static_cast<size_t>(st.st_size);
    void* base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base != MAP_FAILED) {
      ::madvise(base, size, MADV_SEQUENTIAL);
      std::string_view all{static_cast<const char*>(base), size};
      for (size_t pos = 0; pos < size; pos += chunk)
        f(all.substr(pos, chunk));
      ::munmap(base, size);
      return 0;
    }
  }
  std::string buf;
  buf.resize(chunk);
  for (;;) {
    auto n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno;
    if (n == 0)
      return 0;
    f(std::string_view{buf.data(), static_cast<size_t>(n)});
  }
}

int read_fd(int fd, std::string& out) {
  return read_fd_chunks(fd, [&out](std::string_view chunk) {
    out.append(chunk);
  });
}

namespace {

caf::error input_error(const std::string& path, const std::string& why) {
  // "-" is standard input; a path is quoted (it may hold spaces).
  auto name = path == "-" ? std::string{"standard input"} : "'" + path + "'";
  return make_gpa_error(ec::invalid_request,
                        "cannot read " + name + ": " + why);
}

} // namespace

caf::expected<input_file> input_file::open(const std::string& path,
                                           uint64_t max_bytes) {
  input_file result;
  auto limit_text = [&] {
    return "it is larger than the limit of " + std::to_string(max_bytes)
           + " bytes";
  };
  if (path == "-") {
    // Standard input is whatever the caller piped in: read up to the limit.
    std::string& buf = result.buffer_;
    char chunk[65536];
    for (;;) {
      auto n = ::read(STDIN_FILENO, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return input_error("-", std::strerror(errno));
      if (n == 0)
        break;
      if (buf.size() + static_cast<size_t>(n) > max_bytes)
        return input_error("-", limit_text());
      buf.append(chunk, static_cast<size_t>(n));
    }
    result.view_ = buf;
    return result;
  }
  auto fd = open_input_fd(path, max_bytes);
  if (!fd)
    return std::move(fd.error());
  int in = *fd;
  struct stat st {};
  if (::fstat(in, &st) != 0) {
    auto err = errno;
    ::close(in);
    return input_error(path, std::strerror(err));
  }
  auto size = static_cast<uint64_t>(st.st_size);
  if (size > 0) {
    void* base = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ,
                        MAP_PRIVATE, in, 0);
    if (base == MAP_FAILED) {
      auto err = errno;
      ::close(in);
      return input_error(path, std::strerror(err));
    }
    ::madvise(base, static_cast<size_t>(size), MADV_SEQUENTIAL);
    result.map_ = base;
    result.map_size_ = static_cast<size_t>(size);
    result.view_ = std::string_view{static_cast<const char*>(base),
                                    static_cast<size_t>(size)};
  }
  ::close(in);
  return result;
}

caf::expected<int> open_input_fd(const std::string& path, uint64_t max_bytes) {
  if (path == "-")
    return STDIN_FILENO;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check
  // below refuses it anyway.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return input_error(path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    auto err = errno;
    ::close(fd);
    return input_error(path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return input_error(path, std::string{"it is "} + file_kind_name(st.st_mode)
                                 + ", not a regular file");
  }
  auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    return input_error(path, "it is larger than the limit of "
                                 + std::to_string(max_bytes) + " bytes ("
                                 + std::to_string(size) + " bytes)");
  }
  return fd;
}

caf::error read_input_chunks(const std::string& path, uint64_t max_bytes,
                             const std::function<bool(std::string_view)>& f,
                             size_t chunk) {
  auto fd = open_input_fd(path, max_bytes);
  if (!fd)
    return std::move(fd.error());
  bool from_stdin = *fd == STDIN_FILENO;
  if (!from_stdin)
    ::posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::string buf;
  buf.resize(std::max<size_t>(chunk, 4096));
  uint64_t total = 0;
  caf::error result;
  for (;;) {
    auto n = ::read(*fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      result = input_error(path, std::strerror(errno));
      break;
    }
    if (n == 0)
      break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {
      result = input_error(path, "it is larger than the limit of "
                                     + std::to_string(max_bytes) + " bytes");
      break;
    }
    if (!f(std::string_view{buf.data(), static_cast<size_t>(n)}))
      break;
  }
  if (!from_stdin)
    ::close(*fd);
  return result;
}

input_file::input_file(input_file&& other) noexcept {
  *this = std::move(other);
}

input_file& input_file::operator=(input_file&& other) noexcept {
  if (this != &other) {
    release();
    map_ = other.map_;
    map_size_ = other.map_size_;
    bool buffered = other.map_ == nullptr;
    buffer_ = std::move(other.buffer_);
    view_ = buffered ? std::string_view{buffer_} : other.view_;
    other.map_ = nullptr;
    other.map_size_ = 0;
    other.view_ = {};
  }
  return *this;
}

input_file::~input_file() {
  release();
}

void input_file::release() {
  if (map_ != nullptr)
    ::munmap(map_, map_size_);
  map_ = nullptr;
  map_size_ = 0;
  view_ = {};
}

caf::expected<std::string> read_input_file(const std::string& path,
                                           uint64_t max_bytes) {
  // Read, not mapped: files of /proc and /sys say they are empty.
  std::string text;
  if (auto err = read_input_chunks(
          path, max_bytes,
          [&text](std::string_view chunk) {
            text.append(chunk);
            return true;
          },
          64 << 10))
    return err;
  return text;
}

std::string read_small_file(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return {};
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    out.resize(max_bytes);
    size_t got = 0;
    while (got < max_bytes) {
      auto n = ::read(fd, out.data() + got, max_bytes - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
  }
  ::close(fd);
  return out;
}

std::string touch_file(const std::string& path) {
  struct stat before {};
  if (::lstat(path.c_str(), &before) == 0 && !S_ISREG(before.st_mode)
      && !S_ISLNK(before.st_mode))
    return "cannot touch " + path + ": not a regular file";
  // O_NONBLOCK: a FIFO put there meanwhile does not hang the agent.
  fd_guard fd{::open(path.c_str(),
                     O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                         | O_NOCTTY,
                     0644)};
  if (fd.fd < 0)
    return "cannot touch " + path + ": "
           + (errno == ELOOP ? std::string{"it is a symbolic link"}
                             : std::string{std::strerror(errno)});
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return "cannot touch " + path + ": not a regular file";
  if (::futimens(fd.fd, nullptr) != 0)
    return "cannot touch " + path + ": " + std::strerror(errno);
  return {};
}

bool path_absent(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0)
    return false;
  return errno == ENOENT || errno == ENOTDIR;
}

namespace {

class posix_file_system : public file_system {
public:
  caf::error read_chunks(const std::string& path,
                         const std::function<void(std::string_view)>& f,
                         size_t chunk) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return sys_error("cannot read", path, errno);
    auto err = read_fd_chunks(fd, f, chunk);
    ::close(fd);
    if (err != 0)
      return sys_error("cannot read", path, err);
    return {};
  }

  caf::expected<std::vector<dir_entry>>
  list(const std::string& dir, const std::string& prefix) override {
    auto d = ::opendir(dir.c_str());
    if (!d)
      return sys_error("cannot list", dir, errno);
    std::vector<dir_entry> result;
    while (auto e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name.rfind(prefix, 0) != 0)
        continue;
      struct stat st {};
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        continue; // vanished meanwhile
      dir_entry entry;
      entry.name = std::move(name);
      entry.size = static_cast<uint64_t>(st.st_size);
      entry.mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000
                       + st.st_mtim.tv_nsec / 1000000;
      entry.regular = S_ISREG(st.st_mode);
      result.push_back(std::move(entry));
    }
    ::closedir(d);
    std::sort(result.begin(), result.end(), [](auto& a, auto& b) {
      return a.name < b.name;
    });
    return result;
  }

  void remove(const std::string& path) override {
    ::unlink(path.c_str());
  }

  caf::error make_dirs(const std::string& dir, unsigned mode) override {
    if (dir.empty())
      return make_gpa_error(ec::write_failed, "empty directory name");
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      partial = dir.substr(0, pos);
      if (partial.empty())
        continue;
      if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST)
        return sys_error("cannot create directory", partial, errno);
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0)
      return sys_error("cannot use directory", dir, errno);
    if (S_ISLNK(st.st_mode))
      return make_gpa_error(ec::write_failed, "refusing to write into " + dir
                                                  + ": it is a symlink");
    if (!S_ISDIR(st.st_mode))
      return make_gpa_error(ec::write_failed,
                            "cannot use " + dir + ": not a directory");
    return {};
  }

  caf::error write_atomic(const std::string& dir, const std::string& name,
                          std::string_view content, unsigned mode) override {
    auto tmp = dir + "/" + temp_name(name);
    // A fresh file of ours (O_EXCL), as every file the agent writes.
    auto created = open_written_file(tmp, if_exists::fail, mode);
    if (!created)
      return created.error();
    int fd = created->release();
    const char* p = content.data();
    size_t left = content.size();
    while (left > 0) {
      auto n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        auto err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return sys_error("cannot write", dir + "/" + name, err);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      auto err = errno;
      ::unlink(tmp.c_str());
      return sys_error("cannot write", dir + "/" + name, err);
    }
    auto final_path = dir + "/" + name;
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
      auto err = errno;
      ::unlink(tmp.c_str());
      return sys_error("cannot rename into", final_path, err);
    }
    return {};
  }

  caf::error link_atomic(const std::string& dir, const std::string& target,
                         const std::string& link) override {
    auto tmp = dir + "/" + temp_name(link);
    if (::symlink(target.c_str(), tmp.c_str()) != 0)
      return sys_error("cannot create link", tmp, errno);
    auto final_path = dir + "/" + link;
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
      auto err = errno;
      ::unlink(tmp.c_str());
      return sys_error("cannot replace", final_path, err);
    }
    return {};
  }
};

} // namespace

std::shared_ptr<file_system> make_posix_file_system() {
  return std::make_shared<posix_file_system>();
}

} // namespace gpa::rt
