#include "runtime/log.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/written_file.hpp"

namespace gpa::log {

namespace {

struct registry {
  std::mutex mtx;
  std::vector<spdlog::sink_ptr> sinks;
  spdlog::level::level_enum level = spdlog::level::info;
  bool configured = false;
  /// The API server's sink, once start_shipping() ran.
  std::shared_ptr<rt::log_shipper> shipper;
};

registry& reg() {
  static registry instance;
  return instance;
}

/// The console for the journal: one journal_line() per record, written to
/// stderr with one write() so that lines of several threads never mix.
class journal_sink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    auto line = journal_line(msg.level,
                             {msg.logger_name.data(), msg.logger_name.size()},
                             {msg.payload.data(), msg.payload.size()});
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      auto n = ::write(STDERR_FILENO, p, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break; // the journal is gone: nothing to tell it with
      p += n;
      left -= static_cast<size_t>(n);
    }
  }

  void flush_() override {}
};

/// The console sink: the journal's lines when stderr is the journal, else
/// spdlog's (coloured on a terminal).
spdlog::sink_ptr console_sink() {
  if (stderr_is_journal())
    return std::make_shared<journal_sink>();
  return std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
}

void default_sinks(registry& r) {
  if (!r.configured) {
    r.sinks = {console_sink()};
    r.configured = true;
  }
}

void apply_to_all(registry& r) {
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& lg) {
    lg->sinks() = r.sinks;
    lg->set_level(r.level);
    lg->flush_on(spdlog::level::warn);
  });
}

/// The rotating log file, opened the one safe way (open_written_file): never
/// through a symbolic link, never a FIFO or device (a FIFO used to hang the
/// start), appended to, never truncated at start. Rotation renames regular
/// files only: a backup name that is anything else stops rotating (said once
/// on stderr) and the file grows instead. Writes are buffered like a FILE*
/// and reach the file on flush (each warning, each window, exit) or when the
/// buffer is full.
class safe_rotating_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  safe_rotating_sink(std::string path, size_t max_size, size_t backups,
                     rt::written_file file)
      : path_(std::move(path)), max_size_(max_size), backups_(backups),
        file_(std::move(file)) {
    adopt();
  }

  ~safe_rotating_sink() override {
    std::lock_guard<std::mutex> guard{mutex_};
    write_out();
  }

  /// The name of backup `index` (0: the file itself), as spdlog's rotating
  /// sink names them: "agent.log" -> "agent.1.log".
  static std::string name(const std::string& path, size_t index) {
    return spdlog::sinks::rotating_file_sink_mt::calc_filename(path, index);
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    if (size_ + buf_.size() + formatted.size() > max_size_
        && size_ + buf_.size() > 0) {
      write_out();
      rotate();
    }
    buf_.append(formatted.data(), formatted.size());
    if (buf_.size() >= buffer_limit)
      write_out();
  }

  void flush_() override {
    write_out();
  }

private:
  static constexpr size_t buffer_limit = 8192;

  /// Appends from here on; the size so far counts towards rotation.
  void adopt() {
    int fl = ::fcntl(file_.fd(), F_GETFL);
    if (fl >= 0)
      ::fcntl(file_.fd(), F_SETFL, fl | O_APPEND);
    struct stat st {};
    size_ = ::fstat(file_.fd(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  }

  void write_out() {
    const char* p = buf_.data();
    size_t left = buf_.size();
    while (left > 0 && file_.fd() >= 0) {
      auto n = ::write(file_.fd(), p, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        say_once(write_failed_, "cannot write log file " + path_ + ": "
                                    + std::strerror(errno)
                                    + "; log lines are lost until it works");
        break;
      }
      p += n;
      left -= static_cast<size_t>(n);
      size_ += static_cast<size_t>(n);
    }
    if (left == 0)
      write_failed_ = false;
    buf_.clear();
  }

  void rotate() {
    if (backups_ == 0) {
      // No backups: start the file (ours, open here) over.
      if (::ftruncate(file_.fd(), 0) == 0)
        size_ = 0;
      return;
    }
    // Every name must be a regular file or absent before anything moves.
    for (size_t i = 0; i <= backups_; ++i) {
      struct stat st {};
      auto n = name(path_, i);
      if (::lstat(n.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        say_once(rotation_blocked_,
                 "cannot rotate log file " + path_ + ": " + n + " is "
                     + rt::file_kind_name(st.st_mode)
                     + "; not touching it, the log file grows instead");
        return;
      }
    }
    rotation_blocked_ = false;
    for (size_t i = backups_; i > 0; --i) {
      auto src = name(path_, i - 1);
      auto dst = name(path_, i);
      if (::rename(src.c_str(), dst.c_str()) != 0 && errno != ENOENT) {
        say_once(rotation_blocked_, "cannot rotate log file " + path_ + ": "
                                        + "renaming " + src + " to " + dst
                                        + ": " + std::strerror(errno));
        return;
      }
    }
    auto next = rt::open_written_file(path_, rt::if_exists::reuse, 0644);
    if (!next) {
      // Go on writing the renamed file rather than lose lines.
      say_once(rotation_blocked_, message_of(next.error()));
      return;
    }
    file_ = std::move(*next);
    adopt();
  }

  /// Writes `text` to stderr, once until `flag` is cleared.
  static void say_once(bool& flag, const std::string& text) {
    if (!flag)
      std::fprintf(stderr, "gprofiler-agent: %s\n", text.c_str());
    flag = true;
  }

  std::string path_;
  size_t max_size_;
  size_t backups_;
  rt::written_file file_;
  /// Bytes in the file so far.
  size_t size_ = 0;
  /// Formatted lines not yet written.
  std::string buf_;
  bool write_failed_ = false;
  bool rotation_blocked_ = false;
};

/// Opens the log file for the sink; creates its missing parent directories
/// (0755) as spdlog did.
caf::expected<std::shared_ptr<safe_rotating_sink>>
open_log_file(const log_options& opts) {
  auto slash = opts.file.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    auto parent = opts.file.substr(0, slash);
    struct stat st {};
    if (::lstat(parent.c_str(), &st) != 0 && errno == ENOENT)
      if (auto err = rt::make_posix_file_system()->make_dirs(parent, 0755))
        return err;
  }
  auto file = rt::open_written_file(opts.file, rt::if_exists::reuse, 0644);
  if (!file)
    return std::move(file.error());
  auto max_size
      = static_cast<size_t>(std::max<int64_t>(1, opts.rotate_max_size));
  auto backups
      = static_cast<size_t>(std::max<int64_t>(0, opts.rotate_backup_count));
  return std::make_shared<safe_rotating_sink>(opts.file, max_size, backups,
                                              std::move(*file));
}

} // namespace

std::string setup(const log_options& opts, bool* unsafe) {
  auto& r = reg();
  std::lock_guard<std::mutex> guard{r.mtx};
  std::string error;
  r.sinks.clear();
  r.sinks.push_back(console_sink());
  if (!opts.file.empty()) {
    if (auto sink = open_log_file(opts)) {
      r.sinks.push_back(std::move(*sink));
    } else {
      error = "--log-file: " + message_of(sink.error());
      // There, but not a file to write (a FIFO, device, link, directory, a
      // second name of another file): the user named the wrong thing.
      struct stat st {};
      if (unsafe != nullptr && ::lstat(opts.file.c_str(), &st) == 0
          && (!S_ISREG(st.st_mode) || st.st_nlink > 1))
        *unsafe = true;
    }
  }
  if (r.shipper)
    r.sinks.push_back(r.shipper->sink());
  r.level = opts.verbose ? spdlog::level::debug : spdlog::level::info;
  r.configured = true;
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v");
  apply_to_all(r);
  return error;
}

void start_shipping(rt::log_shipper_options opts) {
  auto& r = reg();
  std::lock_guard<std::mutex> guard{r.mtx};
  if (r.shipper)
    return;
  default_sinks(r);
  // The shipper's own lines go where the others go, except to the server:
  // a logger of its own, outside spdlog's registry (apply_to_all never
  // gives it the shipper's sink), so that its failures cannot feed it.
  auto own = std::make_shared<spdlog::logger>("log-shipper", r.sinks.begin(),
                                              r.sinks.end());
  own->set_level(r.level);
  own->flush_on(spdlog::level::warn);
  opts.report
      = [own](spdlog::level::level_enum level, const std::string& text) {
          own->log(level, "{}", text);
        };
  r.shipper = std::make_shared<rt::log_shipper>(std::move(opts));
  r.sinks.push_back(r.shipper->sink());
  apply_to_all(r);
}

void stop_shipping(std::chrono::milliseconds deadline) {
  std::shared_ptr<rt::log_shipper> shipper;
  {
    auto& r = reg();
    std::lock_guard<std::mutex> guard{r.mtx};
    shipper = r.shipper;
  }
  // Outside the lock: the last send may take up to `deadline`. The sink
  // stays on the loggers (taking it off would race with threads still
  // logging); what it collects from now on is not sent.
  if (shipper)
    shipper->stop(deadline);
}

void silence() {
  auto& r = reg();
  std::lock_guard<std::mutex> guard{r.mtx};
  r.sinks = {std::make_shared<spdlog::sinks::null_sink_mt>()};
  r.level = spdlog::level::off;
  r.configured = true;
  apply_to_all(r);
}

std::shared_ptr<spdlog::logger> get(const std::string& name) {
  auto& r = reg();
  std::lock_guard<std::mutex> guard{r.mtx};
  if (auto existing = spdlog::get(name))
    return existing;
  default_sinks(r);
  auto lg
      = std::make_shared<spdlog::logger>(name, r.sinks.begin(), r.sinks.end());
  lg->set_level(r.level);
  lg->flush_on(spdlog::level::warn);
  spdlog::register_logger(lg);
  return lg;
}

void shutdown() {
  stop_shipping();
  spdlog::shutdown();
}

bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr)
    return false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  int end = 0;
  if (std::sscanf(env, "%llu:%llu%n", &dev, &ino, &end) != 2
      || env[end] != '\0')
    return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0)
    return false;
  return static_cast<unsigned long long>(st.st_dev) == dev
         && static_cast<unsigned long long>(st.st_ino) == ino;
}

std::string journal_line(spdlog::level::level_enum level,
                         std::string_view logger, std::string_view message) {
  int priority = 6;
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: priority = 7; break;
    case spdlog::level::info: priority = 6; break;
    case spdlog::level::warn: priority = 4; break;
    case spdlog::level::err: priority = 3; break;
    case spdlog::level::critical: priority = 2; break;
    default: break;
  }
  size_t cut = 0;
  if (message.size() > journal_max_message) {
    cut = message.size() - journal_max_message;
    message = message.substr(0, journal_max_message);
  }
  std::string line;
  line.reserve(message.size() + logger.size() + 48);
  line += '<';
  line += static_cast<char>('0' + priority);
  line += '>';
  line.append(logger.data(), logger.size());
  line += ": ";
  for (char c : message) {
    switch (c) {
      case '\n': line += "\\n"; break;
      case '\r': line += "\\r"; break;
      case '\0': line += "\\0"; break;
      default: line += c;
    }
  }
  if (cut > 0)
    line += " [... " + std::to_string(cut) + " more bytes not shown]";
  line += '\n';
  return line;
}

} // namespace gpa::log
