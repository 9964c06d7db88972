#include "worker.hpp"

#include "admission.hpp"
#include "event_ptr.hpp"
#include "http_server.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "readiness.hpp"
#include "stream_hub.hpp"

#include <event2/event.h>

#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sysexits.h>
#include <system_error>
#include <unistd.h>

namespace pgfeed::notifier {

namespace {

// How long SIGTERM waits for streams to take their retry: hint before the process exits anyway.
constexpr timeval kDrainDeadline{5, 0};

struct Worker {
    const ConfigSources &sources;
    Config config;
    int index;
    event_base *base;
    HttpServer *http = nullptr;
    StreamHub *hub = nullptr;
    Readiness *readiness = nullptr;
    bool draining = false;
    EventPtr deadline;
};

void on_stop_signal(evutil_socket_t, short, void *arg) {
    auto &worker = *static_cast<Worker *>(arg);
    if (worker.draining)
        return;
    worker.draining = true;
    log_info("worker", "draining", {{"worker", worker.index}, {"streams", worker.hub->size()}});
    worker.http->stop_accepting();
    worker.hub->drain([base = worker.base] { event_base_loopexit(base, nullptr); });
    worker.deadline.reset(evtimer_new(
        worker.base,
        [](evutil_socket_t, short, void *base) { event_base_loopexit(static_cast<event_base *>(base), nullptr); },
        worker.base));
    evtimer_add(worker.deadline.get(), &kDrainDeadline);
}

// A bad edit of the file must not take a running worker down: keep the running configuration.
void on_reload_signal(evutil_socket_t, short, void *arg) {
    auto &worker = *static_cast<Worker *>(arg);
    try {
        Config reloaded = load_config(worker.sources);
        reloaded.http.port = worker.config.http.port;
        worker.http->reconfigure(reloaded);
        worker.hub->reconfigure(reloaded);
        worker.readiness->reconfigure(reloaded);
        set_log_level(reloaded.log.level);
        worker.config = std::move(reloaded);
        log_info("worker", "reloaded", {{"worker", worker.index}});
    } catch (const std::exception &error) {
        log_error("worker", "reload failed, keeping the running configuration",
                  {{"worker", worker.index}, {"error", error.what()}});
    }
}

} // namespace

int run_worker(const ConfigSources &sources, Config config, int index, int admission_fd, MetricsArea &metrics_area) {
    // A supervisor that dies without stopping us would leave an orphan holding the port.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    // What ps and /proc/PID/comm show: which process is which (at most 15 characters).
    prctl(PR_SET_NAME, ("pgfeed-worker-" + std::to_string(index)).substr(0, 15).c_str());
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGCHLD, SIG_DFL); // the supervisor's handler would write to its loop, closed here
    // With a change list, a socket watched and unwatched within one turn of the loop costs no
    // epoll_ctl at all (stream_hub.cpp writes directly and watches only sockets that are full).
    std::unique_ptr<event_config, decltype(&event_config_free)> options(event_config_new(), event_config_free);
    if (options)
        event_config_set_flag(options.get(), EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    std::unique_ptr<event_base, decltype(&event_base_free)> base(
        options ? event_base_new_with_config(options.get()) : nullptr, event_base_free);
    if (!base) {
        log_error("worker", "cannot create the event loop", {{"worker", index}});
        return EX_OSERR;
    }
    int listen_fd = -1;
    try {
        listen_fd = open_reuseport_socket(config.http.listen, config.http.port, true);
    } catch (const std::system_error &error) {
        log_error("worker", "cannot listen", {{"worker", index}, {"error", error.what()}});
        return EX_UNAVAILABLE;
    }

    Worker worker{sources, config, index, base.get(), nullptr, nullptr, nullptr, false, nullptr};
    WorkerMetrics metrics = metrics_area.worker(index);
    // Generous: during a storm of connections on a busy machine the supervisor may answer late, and
    // a late answer beats refusing a client that would be admitted.
    AdmissionClient admission(base.get(), admission_fd, std::chrono::seconds(5));
    HttpServer *http = nullptr;
    StreamHub hub(base.get(), config, metrics, admission,
                  [&http](evhttp_request *request, int status, const char *reason, const char *message) {
                      http->refuse(request, status, reason, message);
                  });
    Readiness readiness(base.get(), config, metrics, [&hub] { return hub.ready(); });
    std::unique_ptr<HttpServer> server;
    try {
        server =
            std::make_unique<HttpServer>(base.get(), config, listen_fd, index, hub, readiness, metrics_area, metrics);
    } catch (const std::exception &error) {
        log_error("worker", "cannot serve HTTP", {{"worker", index}, {"error", error.what()}});
        close(listen_fd);
        return EX_SOFTWARE;
    }
    http = server.get();
    worker.http = http;
    worker.hub = &hub;
    worker.readiness = &readiness;

    EventPtr stop_on_term(evsignal_new(base.get(), SIGTERM, on_stop_signal, &worker));
    EventPtr stop_on_int(evsignal_new(base.get(), SIGINT, on_stop_signal, &worker));
    EventPtr reload_on_hup(evsignal_new(base.get(), SIGHUP, on_reload_signal, &worker));
    for (event *signal_event : {stop_on_term.get(), stop_on_int.get(), reload_on_hup.get()})
        if (!signal_event || event_add(signal_event, nullptr) != 0) {
            log_error("worker", "cannot watch signals", {{"worker", index}});
            return EX_OSERR;
        }

    hub.start();
    readiness.start();
    log_info("worker", "serving", {{"worker", index}, {"pid", getpid()}, {"port", config.http.port}});
    event_base_dispatch(base.get());
    log_info("worker", "stopped", {{"worker", index}});
    return 0;
}

} // namespace pgfeed::notifier
