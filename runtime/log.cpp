#include "runtime/log.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

#include <sys/stat.h>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace gpa::log {

namespace {

struct registry {
  std::mutex mtx;
  std::vector<spdlog::sink_ptr> sinks;
  spdlog::level::level_enum level = spdlog::level::info;
  bool configured = false;
};

registry& reg() {
  static registry instance;
  return instance;
}

void default_sinks(registry& r) {
  if (!r.configured) {
    r.sinks = {std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
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

/// The first of the log file and its rotated backups that is a symbolic
/// link, or "" if none is. The agent runs as root: a link planted there
/// would make it write (and rotate) whatever file the link names.
std::string planted_link(const log_options& opts) {
  auto count
      = static_cast<size_t>(std::max<int64_t>(0, opts.rotate_backup_count));
  for (size_t i = 0; i <= count; ++i) {
    auto name
        = spdlog::sinks::rotating_file_sink_mt::calc_filename(opts.file, i);
    struct stat st;
    if (::lstat(name.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      return name;
  }
  return {};
}

} // namespace

std::string setup(const log_options& opts) {
  auto& r = reg();
  std::lock_guard<std::mutex> guard{r.mtx};
  std::string error;
  r.sinks.clear();
  r.sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!opts.file.empty()) {
    if (auto link = planted_link(opts); !link.empty()) {
      error = "log file " + link
              + " is a symbolic link; refusing to write through it; logging "
                "to the console only";
    } else {
      try {
        r.sinks.push_back(
            std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
                opts.file, static_cast<size_t>(opts.rotate_max_size),
                static_cast<size_t>(opts.rotate_backup_count)));
      } catch (const std::exception& ex) {
        error = "cannot open log file " + opts.file + ": " + ex.what()
                + "; logging to the console only";
      }
    }
  }
  r.level = opts.verbose ? spdlog::level::debug : spdlog::level::info;
  r.configured = true;
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v");
  apply_to_all(r);
  return error;
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
  spdlog::shutdown();
}

} // namespace gpa::log
