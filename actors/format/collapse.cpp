#include "actors/format/collapse.hpp"

#include <cstdlib>

namespace gpa::format {

void perf_collapser::feed(std::string_view chunk) {
  partial_.append(chunk);
  size_t pos = 0;
  for (;;) {
    auto nl = partial_.find('\n', pos);
    if (nl == std::string::npos)
      break;
    line(std::string_view{partial_}.substr(pos, nl - pos));
    pos = nl + 1;
  }
  partial_.erase(0, pos);
}

void perf_collapser::finish() {
  if (!partial_.empty())
    line(partial_);
  partial_.clear();
  end_record();
}

void perf_collapser::line(std::string_view l) {
  if (l.empty()) {
    end_record();
    return;
  }
  if (!in_record_) {
    // "comm pid/tid [cpu] time: ..." : pid/tid is the token before '['.
    auto colon = l.find(": ");
    auto head = l.substr(0, colon);
    auto bracket = head.rfind(" [");
    if (bracket != std::string_view::npos)
      head = head.substr(0, bracket);
    auto end = head.find_last_not_of(' ');
    head = head.substr(0, end + 1);
    auto space = head.rfind(' ');
    auto pidtok = head.substr(space + 1);
    pid_ = std::atoi(std::string{pidtok}.c_str());
    auto comm = head.substr(0, space);
    comm = comm.substr(0, comm.find_last_not_of(' ') + 1);
    comm = comm.substr(comm.find_first_not_of(" \t"));
    comm_ = std::string{comm};
    in_record_ = true;
    frames_.clear();
    return;
  }
  auto s = l.find_first_not_of(" \t");
  l = l.substr(s);
  auto sp = l.find(' ');
  auto rest = l.substr(sp + 1);
  auto paren = rest.rfind(" (");
  std::string sym{rest.substr(0, paren)};
  std::string dso{rest.substr(paren + 2, rest.size() - paren - 3)};
  auto plus = sym.rfind("+0x");
  if (plus != std::string::npos)
    sym.erase(plus);
  if (sym == "[unknown]" && dso != "unknown")
    sym = "(" + dso.substr(dso.rfind('/') + 1) + ")";
  else if (dso.find("kernel") != std::string::npos)
    sym += "_[k]";
  frames_.push_back(sym);
}

void perf_collapser::end_record() {
  if (!in_record_)
    return;
  in_record_ = false;
  std::string stack = comm_;
  for (auto i = frames_.rbegin(); i != frames_.rend(); ++i)
    stack += ";" + *i;
  auto& entry = result_[pid_];
  entry.first = comm_;
  ++entry.second[stack];
}

std::vector<process_stacks> perf_collapser::take_processes() {
  std::vector<process_stacks> result;
  for (auto& [pid, entry] : result_) {
    process_stacks p;
    p.pid = pid;
    p.comm = entry.first;
    for (auto& [stack, count] : entry.second)
      p.stacks.push_back({stack, count});
    result.push_back(std::move(p));
  }
  result_.clear();
  return result;
}

} // namespace gpa::format
