#include "format/time.hpp"

#include <cstdio>
#include <ctime>

namespace gpa::format {

std::string iso8601(int64_t unix_ms, time_precision precision) {
  // Floor division, so that times before the epoch keep a fraction in
  // [0, 1000).
  int64_t secs = unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000;
  auto frac = static_cast<int>(unix_ms - secs * 1000);
  auto t = static_cast<time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  if (precision == time_precision::seconds)
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec);
  else
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, frac);
  return buf;
}

std::optional<int64_t> parse_iso8601(std::string_view text) {
  std::string s{text};
  int y, mo, d, h, mi, sec;
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
                  &sec, &used)
          != 6
      || used != 19)
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return std::nullopt;
  int64_t frac_ms = 0;
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac_ms += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
  }
  auto rest = s.substr(pos);
  if (!rest.empty() && rest != "Z" && rest != "+00:00")
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + frac_ms;
}

} // namespace gpa::format
