// The process that runs the bridge (bridge.hpp), apart from the workers: moving events into the
// stream stays prompt however busy the workers are writing to their clients, and a worker's crash
// never stops it. Runs until SIGTERM or SIGINT; SIGHUP applies a new log level.
#pragma once

#include "config.hpp"

namespace pgfeed::notifier {

// Returns the process's exit status.
int run_bridge_process(const ConfigSources &sources, const Config &config);

} // namespace pgfeed::notifier
