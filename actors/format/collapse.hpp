#pragma once

// TEMPORARY minimal converter so the pipeline can be exercised; replaced by
// the streaming converter from the collapse branch.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "messages/profile.hpp"

namespace gpa::format {

class perf_collapser {
public:
  void feed(std::string_view chunk);
  void finish();
  std::vector<process_stacks> take_processes();

private:
  void line(std::string_view l);
  void end_record();
  std::string partial_;
  bool in_record_ = false;
  int32_t pid_ = 0;
  std::string comm_;
  std::vector<std::string> frames_;
  std::map<int32_t, std::pair<std::string, std::map<std::string, uint64_t>>>
      result_;
};

} // namespace gpa::format
