// The main process: forks the worker processes and the bridge's process, restarts one that dies
// (a worker's clients reconnect to the others and replay), keeps the exact per-user and total connection counts for all
// of them (admission.hpp), and passes SIGTERM and SIGHUP on. It serves no connection itself.
#pragma once

#include "config.hpp"

namespace pgfeed::notifier {

// Runs until every worker has exited after SIGTERM or SIGINT; returns the exit status.
int run_supervisor(const ConfigSources &sources, Config config);

} // namespace pgfeed::notifier
