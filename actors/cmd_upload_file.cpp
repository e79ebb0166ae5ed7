#include "actors/commands.hpp"

#include <cstdio>

namespace gpa {

int run_upload_file(const config::invocation&) {
  std::fprintf(stderr, "gprofiler-agent: error: this command is not "
                       "implemented yet\n");
  return 1;
}

} // namespace gpa
