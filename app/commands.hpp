#pragma once

// The subcommands next to the agent itself. Each returns the process exit
// status: 0 on success, 1 on a runtime failure, 2 on a usage mistake.

#include "config/load.hpp"

namespace gpa {

/// `gprofiler-agent collapse-perf [FILE|-]`: perf script text in, collapsed
/// stacks out (stdout).
int run_collapse_perf(const config::invocation& inv);

/// `gprofiler-agent flamegraph FILE`: the flame-graph page of a .col or
/// folded file, to stdout.
int run_flamegraph(const config::invocation& inv);

/// `gprofiler-agent upload-file --file-path FILE`: uploads one .col file.
int run_upload_file(const config::invocation& inv);

/// `gprofiler-agent node-attach PID START_TIME ADDON_DIR start|stop`: the
/// Node.js profiler's child (attach-maps); argv after the command name.
int run_node_attach(int argc, char** argv);

} // namespace gpa
