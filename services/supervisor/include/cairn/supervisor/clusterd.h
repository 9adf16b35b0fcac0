// The clusterd program: `clusterd --config node.yaml [--log-level L]`. main() only calls
// ClusterdMain so the program's behaviour lives in a library.
//
// Exit codes: 0 after a clean stop on SIGTERM/SIGINT (and for --help/--version), 1 when the node
// could not start (data dir, ports, log file), 2 for bad arguments or an invalid node.yaml (the
// message, with FILE:LINE:COLUMN, goes to stderr).
#pragma once

#include "cairn/config/node_config.h"

namespace cairn::supervisor {

int ClusterdMain(int argc, char** argv);

// Runs a Supervisor for config on an io_context until SIGTERM or SIGINT, then stops it.
// Logging must already be set up. Returns the process exit code (0, or 1 when Start failed).
int RunUntilSignalled(const config::NodeConfig& config);

}  // namespace cairn::supervisor
