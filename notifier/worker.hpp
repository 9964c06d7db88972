// One worker process: its own event loop serving HTTP and SSE on its SO_REUSEPORT socket, its own
// stream reader and the readiness probes. Runs until SIGTERM or SIGINT
// has drained its streams; SIGHUP reloads what can change while running.
#pragma once

#include "config.hpp"
#include "metrics.hpp"

namespace pgfeed::notifier {

// Returns the process's exit status. `admission_fd` is this worker's end of the channel to the
// supervisor (admission.hpp); `config.http.port` is the port the supervisor chose.
int run_worker(const ConfigSources &sources, Config config, int index, int admission_fd, MetricsArea &metrics);

} // namespace pgfeed::notifier
