#include "app/studio_link.hpp"

#include <algorithm>
#include <chrono>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <unistd.h>

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/uploader.hpp"
#include "config/checks.hpp"
#include "runtime/error.hpp"
#include "runtime/host_info.hpp"
#include "runtime/log.hpp"

namespace gpa {

namespace {

/// The host's first IPv4 address that is up and not a loopback one, as
/// gProfiler reports it ("127.0.0.1" if there is none). Read from the
/// interfaces: no packet is sent.
std::string local_ip() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0)
    return "127.0.0.1";
  std::string result = "127.0.0.1";
  for (auto* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET
        || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
      continue;
    char text[INET_ADDRSTRLEN] = {};
    auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) {
      result = text;
      break;
    }
  }
  ::freeifaddrs(list);
  return result;
}

control_command to_command(const rt::studio_command& c) {
  control_command cmd;
  cmd.id = c.id;
  cmd.type = c.type;
  cmd.continuous = c.continuous;
  cmd.duration_s = c.duration_s.value_or(0);
  cmd.frequency = c.frequency.value_or(0);
  cmd.pids = c.pids;
  cmd.stop_level = c.stop_level;
  return cmd;
}

} // namespace

studio_link::studio_link(const agent_options& opts, std::string hostname,
                         std::string ledger_path)
    : hostname_(std::move(hostname)), ip_(local_ip()),
      api_(opts.compat.api_server), service_(opts.upload.service_name),
      interval_(std::max<int64_t>(opts.compat.heartbeat_interval, 1)) {
  client_ = std::make_unique<rt::studio_client>(
      rt::make_curl_http_client(make_http_options(opts.upload)),
      opts.compat.api_server, opts.upload.token);
  auto lg = log::get("studio");
  if (auto ledger = rt::command_ledger::open(ledger_path)) {
    ledger_ = std::make_unique<rt::command_ledger>(std::move(*ledger));
  } else {
    lg->error("{}; starting with no record of the commands executed "
              "before",
              describe(ledger.error()));
    // An empty ledger at the same path: the next id written replaces the
    // bad file (never through a link).
    ::unlink(ledger_path.c_str());
    if (auto fresh = rt::command_ledger::open(ledger_path))
      ledger_ = std::make_unique<rt::command_ledger>(std::move(*fresh));
  }
  if (ledger_)
    for (auto& id : ledger_->ids())
      note_executed(id);
}

studio_link::~studio_link() {
  stop();
}

void studio_link::start(controller_actor controller) {
  controller_ = std::move(controller);
  log::get("studio")->info("heartbeat mode: waiting for commands from {} "
                           "(a heartbeat every {} s)",
                           config::redact_url(api_), interval_.count());
  thread_ = std::thread([this] {
    run();
  });
}

void studio_link::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_ && !thread_.joinable())
      return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (client_)
    client_->interrupt();
  if (thread_.joinable())
    thread_.join();
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& r : reports_)
    log::get("studio")->warn("the outcome of command {} ({}) was not sent: "
                             "the agent stops",
                             r.command_id, r.status);
  reports_.clear();
}

void studio_link::report(const command_outcome& outcome) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    reports_.push_back(outcome);
  }
  wake_.notify_all();
}

void studio_link::note_executed(const std::string& id) {
  if (!executed_.insert(id).second)
    return;
  executed_order_.push_back(id);
  if (executed_order_.size() > 2 * rt::command_ledger::max_ids) {
    executed_.erase(executed_order_.front());
    executed_order_.pop_front();
  }
}

bool studio_link::executed_before(const std::string& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  return executed_.count(id) > 0;
}

void studio_link::remember_executed(const std::string& id) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    note_executed(id);
    to_remember_.push_back(id);
  }
  wake_.notify_all();
}

void studio_link::run() {
  auto next = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock<std::mutex> lock{mtx_};
      wake_.wait_until(lock, next, [&] {
        return stopping_ || !reports_.empty() || !to_remember_.empty();
      });
      if (stopping_)
        break;
    }
    send_reports();
    if (std::chrono::steady_clock::now() >= next) {
      beat();
      next = std::chrono::steady_clock::now() + interval_;
    }
  }
  // What the controller executed while stopping is still written down.
  send_reports();
}

void studio_link::send_reports() {
  std::vector<std::string> remember;
  std::deque<command_outcome> reports;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    remember.swap(to_remember_);
    reports.swap(reports_);
  }
  auto lg = log::get("studio");
  for (auto& id : remember) {
    std::lock_guard<std::mutex> guard{ledger_mtx_};
    if (!ledger_)
      continue;
    if (auto ok = ledger_->add(id); !ok)
      lg->warn("{}: command {} may run again after a restart",
               describe(ok.error()), id);
  }
  bool stopping = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping = stopping_;
  }
  for (auto& r : reports) {
    if (stopping) {
      std::lock_guard<std::mutex> guard{mtx_};
      reports_.push_back(r);
      continue;
    }
    auto sent = client_->report_completion(r.command_id, hostname_, r.status,
                                           r.execution_time_s, r.error);
    if (sent)
      lg->info("reported command {} as {}", r.command_id, r.status);
    else
      lg->warn("cannot report command {} as {}: {}", r.command_id, r.status,
               describe(sent.error()));
  }
}

void studio_link::beat() {
  rt::heartbeat_info info;
  info.hostname = hostname_;
  info.ip_address = ip_;
  info.service_name = service_;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    info.last_command_id = last_command_id_;
    info.received_ids.assign(received_.begin(), received_.end());
  }
  {
    std::lock_guard<std::mutex> guard{ledger_mtx_};
    if (ledger_)
      info.executed_ids = ledger_->ids();
  }
  info.now_ms = rt::wall_clock_ms();
  auto lg = log::get("studio");
  auto answer = client_->heartbeat(info);
  if (!answer) {
    auto why = describe(answer.error());
    if (why != last_error_)
      lg->warn("heartbeat failed: {} (trying again every {} s; said again "
               "when it changes)",
               why, interval_.count());
    last_error_ = why;
    return;
  }
  if (!last_error_.empty())
    lg->info("heartbeats work again");
  last_error_.clear();
  if (!*answer) {
    lg->debug("heartbeat: no new command");
    return;
  }
  auto& c = **answer;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    last_command_id_ = c.id;
    if (std::find(received_.begin(), received_.end(), c.id)
        != received_.end()) {
      lg->debug("command {} was received before: skipped", c.id);
      return;
    }
    received_.push_back(c.id);
    if (received_.size() > rt::command_ledger::max_ids)
      received_.pop_front();
  }
  if (!c.target_hostnames.empty()
      && std::find(c.target_hostnames.begin(), c.target_hostnames.end(),
                   hostname_)
             == c.target_hostnames.end()) {
    // gProfiler skips such a command; it is not for this host.
    lg->info("command {} targets other hosts, not {}: skipped", c.id,
             hostname_);
    return;
  }
  if (!c.profiling_mode.empty() && c.profiling_mode != "cpu"
      && c.type == "start") {
    lg->warn("command {} asks for profiling mode '{}': not supported yet "
             "(cpu only)",
             c.id, c.profiling_mode);
    report({c.id, "failed", 0,
            "profiling mode '" + c.profiling_mode
                + "' is not supported yet (cpu only)"});
    remember_executed(c.id);
    return;
  }
  caf::anon_send(controller_, command_atom_v, to_command(c));
}

} // namespace gpa
