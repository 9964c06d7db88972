// pgfeed-notifier: reads its configuration, then runs one libevent loop until SIGTERM or SIGINT.
#include "bridge.hpp"
#include "config.hpp"
#include "log.hpp"

#include <event2/event.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <sysexits.h>
#include <unistd.h>
#include <utility>

using namespace pgfeed::notifier;

namespace {

constexpr const char *kProgram = "pgfeed-notifier";

// What the signal callbacks act on.
struct Daemon {
    event_base *base;
    ConfigSources sources;
    Config config;
};

void on_stop_signal(evutil_socket_t signal, short, void *arg) {
    auto &daemon = *static_cast<Daemon *>(arg);
    log_info("main", "stopping", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
    event_base_loopexit(daemon.base, nullptr);
}

// A bad edit of the file must not take a running daemon down: keep the running configuration.
void on_reload_signal(evutil_socket_t, short, void *arg) {
    auto &daemon = *static_cast<Daemon *>(arg);
    try {
        Config reloaded = load_config(daemon.sources);
        // Only the log level applies at once; the bridge keeps its sessions and settings.
        std::string changed, at_restart;
        for (const std::string &key : changed_keys(daemon.config, reloaded)) {
            changed += (changed.empty() ? "" : ",") + key;
            if (key != "log.level")
                at_restart += (at_restart.empty() ? "" : ",") + key;
        }
        daemon.config = std::move(reloaded);
        set_log_level(daemon.config.log.level);
        log_info("main", "reloaded", {{"changed", changed}});
        if (!at_restart.empty())
            log_warn("main", "these settings take effect at the next start", {{"keys", at_restart}});
    } catch (const ConfigError &error) {
        log_error("main", "reload failed, keeping the running configuration", {{"error", error.what()}});
    }
}

using EventBase = std::unique_ptr<event_base, decltype(&event_base_free)>;
using Event = std::unique_ptr<event, decltype(&event_free)>;

} // namespace

int main(int argc, char **argv, char **envp) {
    ConfigSources sources;
    Config config;
    try {
        sources = parse_command_line(argc, argv, envp);
        switch (sources.command) {
        case Command::help:
            std::cout << usage_text(kProgram);
            return 0;
        case Command::version:
            std::cout << kProgram << " " << PGFEED_NOTIFIER_VERSION << "\n";
            return 0;
        case Command::check_config:
            std::cout << describe_config(sources);
            return 0;
        case Command::run:
            config = load_config(sources);
        }
    } catch (const UsageError &error) {
        std::cerr << kProgram << ": " << error.what() << "\nTry '" << kProgram << " --help'.\n";
        return EX_USAGE;
    } catch (const ConfigError &error) {
        std::cerr << error.what() << "\n";
        return EX_CONFIG;
    }
    set_log_level(config.log.level);
    // A peer closing a socket must be an error on that connection, not the end of the process.
    std::signal(SIGPIPE, SIG_IGN);

    EventBase base(event_base_new(), event_base_free);
    if (!base) {
        log_error("main", "cannot create the event loop");
        return EX_OSERR;
    }
    Daemon daemon{base.get(), std::move(sources), std::move(config)};
    Event stop_on_term(evsignal_new(base.get(), SIGTERM, on_stop_signal, &daemon), event_free);
    Event stop_on_int(evsignal_new(base.get(), SIGINT, on_stop_signal, &daemon), event_free);
    Event reload_on_hup(evsignal_new(base.get(), SIGHUP, on_reload_signal, &daemon), event_free);
    for (event *signal_event : {stop_on_term.get(), stop_on_int.get(), reload_on_hup.get()}) {
        if (!signal_event || event_add(signal_event, nullptr) != 0) {
            log_error("main", "cannot watch signals");
            return EX_OSERR;
        }
    }

    log_info("main", "started", {{"version", PGFEED_NOTIFIER_VERSION}, {"pid", getpid()}});
    // Destroyed before the loop: stopping closes its sessions, and the bridge lock with them.
    std::unique_ptr<Bridge> bridge;
    if (daemon.config.bridge.enabled) {
        bridge = std::make_unique<Bridge>(base.get(), daemon.config);
        bridge->start();
    }
    event_base_dispatch(base.get());
    log_info("main", "stopped");
    return 0;
}
