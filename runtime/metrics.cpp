#include "runtime/metrics.hpp"

#include <cmath>
#include <cstdio>

namespace gpa::rt {

namespace {

std::string escape_label(const std::string& x) {
  std::string result;
  for (auto c : x) {
    if (c == '\\' || c == '"')
      result += '\\';
    if (c == '\n') {
      result += "\\n";
      continue;
    }
    result += c;
  }
  return result;
}

std::string escape_help(const std::string& x) {
  std::string result;
  for (auto c : x) {
    if (c == '\\')
      result += "\\\\";
    else if (c == '\n')
      result += "\\n";
    else
      result += c;
  }
  return result;
}

std::string format_number(double x) {
  if (std::isnan(x))
    return "NaN";
  if (std::isinf(x))
    return x > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", x);
  return buf;
}

} // namespace

void metrics::update(const std::string& name, const std::string& help,
                     bool counter, double x, const metric_labels& labels,
                     bool add) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& fam = families_[name];
  if (fam.help.empty()) {
    fam.help = help;
    fam.counter = counter;
  }
  auto& v = fam.series[labels];
  v = add ? v + x : x;
}

void metrics::add(const std::string& name, const std::string& help,
                  double delta, const metric_labels& labels) {
  update(name, help, true, delta, labels, true);
}

void metrics::set(const std::string& name, const std::string& help,
                  double value, const metric_labels& labels) {
  update(name, help, false, value, labels, false);
}

double metrics::value(const std::string& name,
                      const metric_labels& labels) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = families_.find(name);
  if (i == families_.end())
    return 0;
  auto j = i->second.series.find(labels);
  return j == i->second.series.end() ? 0 : j->second;
}

std::string metrics::render() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::string out;
  for (auto& [name, fam] : families_) {
    out += "# HELP " + name + " " + escape_help(fam.help) + "\n";
    out += "# TYPE " + name + (fam.counter ? " counter\n" : " gauge\n");
    for (auto& [labels, v] : fam.series) {
      out += name;
      if (!labels.empty()) {
        out += '{';
        for (size_t i = 0; i < labels.size(); ++i) {
          if (i > 0)
            out += ',';
          out += labels[i].first + "=\"" + escape_label(labels[i].second) + '"';
        }
        out += '}';
      }
      out += ' ' + format_number(v) + '\n';
    }
  }
  return out;
}

} // namespace gpa::rt
