#include "bridge_process.hpp"

#include "bridge.hpp"
#include "event_ptr.hpp"
#include "log.hpp"

#include <event2/event.h>

#include <csignal>
#include <memory>
#include <sys/prctl.h>
#include <sysexits.h>
#include <unistd.h>

namespace pgfeed::notifier {

int run_bridge_process(const ConfigSources &sources, const Config &config) {
    // A supervisor that dies without stopping us would leave a bridge holding the lock.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    prctl(PR_SET_NAME, "pgfeed-bridge"); // what ps and /proc/PID/comm show
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGCHLD, SIG_DFL);
    std::unique_ptr<event_base, decltype(&event_base_free)> base(event_base_new(), event_base_free);
    if (!base) {
        log_error("bridge", "cannot create the event loop");
        return EX_OSERR;
    }
    auto on_stop = [](evutil_socket_t, short, void *arg) {
        event_base_loopexit(static_cast<event_base *>(arg), nullptr);
    };
    auto on_reload = [](evutil_socket_t, short, void *arg) {
        try {
            set_log_level(load_config(*static_cast<const ConfigSources *>(arg)).log.level);
        } catch (const ConfigError &error) {
            log_error("bridge", "reload failed, keeping the running configuration", {{"error", error.what()}});
        }
    };
    EventPtr stop_on_term(evsignal_new(base.get(), SIGTERM, on_stop, base.get()));
    EventPtr stop_on_int(evsignal_new(base.get(), SIGINT, on_stop, base.get()));
    EventPtr reload_on_hup(evsignal_new(base.get(), SIGHUP, on_reload, const_cast<ConfigSources *>(&sources)));
    for (event *signal_event : {stop_on_term.get(), stop_on_int.get(), reload_on_hup.get()})
        if (!signal_event || event_add(signal_event, nullptr) != 0) {
            log_error("bridge", "cannot watch signals");
            return EX_OSERR;
        }
    // Destroyed before the loop: stopping closes its sessions, and the bridge lock with them.
    Bridge bridge(base.get(), config);
    bridge.start();
    log_info("bridge", "process started", {{"pid", getpid()}});
    event_base_dispatch(base.get());
    return 0;
}

} // namespace pgfeed::notifier
