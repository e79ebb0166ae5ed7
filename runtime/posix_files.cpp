#include "runtime/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/error.hpp"

namespace gpa::rt {

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
    int fd = ::open(tmp.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    static_cast<mode_t>(mode));
    if (fd < 0)
      return sys_error("cannot create", tmp, errno);
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
