// The workers' shared port: each worker binds its own listening socket with SO_REUSEPORT and the
// kernel spreads new connections over them, so no process accepts for another and a dead worker
// takes only its own queue with it.
#pragma once

#include <string>

namespace pgfeed::notifier {

// A non-blocking, close-on-exec TCP socket bound to address:port (a numeric IPv4 or IPv6 address)
// with SO_REUSEPORT, listening when `listen` is true. Throws std::system_error naming the address.
int open_reuseport_socket(const std::string &address, int port, bool listen);

// The port a bound socket has (what port 0 turned into).
int bound_port(int fd);

} // namespace pgfeed::notifier
