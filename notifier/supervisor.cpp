#include "supervisor.hpp"

#include "admission.hpp"
#include "backoff.hpp"
#include "bridge_process.hpp"
#include "event_ptr.hpp"
#include "http_server.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "worker.hpp"

#include <event2/event.h>

#include <csignal>
#include <cstdlib>
#include <memory>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace pgfeed::notifier {

namespace {

// Not an error: the bridge runs without the gateway. But every token is then refused.
void warn_without_secrets(const Config &config) {
    if (auth_keys(config).hs256_secrets.empty())
        log_warn("supervisor", "no [auth] hs256_secrets: every stream and feed API call is refused (401)");
}

AdmissionLimits admission_limits(const Config &config) {
    return AdmissionLimits{config.limits.connections_per_user, config.limits.max_connections};
}

class Supervisor {
  public:
    Supervisor(event_base *base, const ConfigSources &sources, Config config, MetricsArea &metrics,
               sigset_t handled_signals)
        : base_(base), sources_(sources), config_(std::move(config)), metrics_(metrics),
          handled_signals_(handled_signals), admission_(base, admission_limits(config_)),
          restart_backoff_(std::chrono::milliseconds(100), std::chrono::milliseconds(5000)) {
        // The worker slots, then the bridge's process when this instance may run the bridge.
        workers_.resize(static_cast<std::size_t>(config_.http.workers) + (config_.bridge.enabled ? 1 : 0));
        for (std::size_t i = 0; i < workers_.size(); ++i) {
            workers_[i].index = static_cast<int>(i);
            workers_[i].bridge = static_cast<int>(i) == config_.http.workers;
            workers_[i].owner = this;
            workers_[i].restart_timer.reset(evtimer_new(base_, on_restart_due, &workers_[i]));
        }
    }

    void start() {
        for (WorkerSlot &slot : workers_)
            spawn(slot);
    }

    void stop(int signal) {
        stopping_ = true;
        log_info("supervisor", "stopping", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
        for (WorkerSlot &slot : workers_) {
            evtimer_del(slot.restart_timer.get());
            if (slot.pid > 0)
                kill(slot.pid, SIGTERM);
        }
        exit_when_all_gone();
    }

    // A bad edit of the file must not take a running daemon down: keep the running configuration.
    void reload() {
        try {
            Config reloaded = load_config(sources_);
            admission_.reconfigure(admission_limits(reloaded));
            std::string restart_keys;
            for (const std::string &key : changed_keys(config_, reloaded))
                if (key == "http.listen" || key == "http.port" || key == "http.workers" ||
                    key.rfind("bridge.", 0) == 0 || key.rfind("postgres.", 0) == 0 || key.rfind("redis.", 0) == 0)
                    restart_keys += (restart_keys.empty() ? "" : ",") + key;
            const int port = config_.http.port;
            config_ = std::move(reloaded);
            config_.http.port = port;
            set_log_level(config_.log.level);
            log_info("supervisor", "reloaded");
            warn_without_secrets(config_);
            if (!restart_keys.empty())
                log_warn("supervisor", "these settings take effect at the next start", {{"keys", restart_keys}});
        } catch (const std::exception &error) {
            log_error("supervisor", "reload failed, keeping the running configuration", {{"error", error.what()}});
            return;
        }
        for (WorkerSlot &slot : workers_)
            if (slot.pid > 0)
                kill(slot.pid, SIGHUP);
    }

    void reap() {
        int status = 0;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (WorkerSlot &slot : workers_) {
                if (slot.pid != pid)
                    continue;
                slot.pid = 0;
                if (!slot.bridge) {
                    admission_.detach(slot.index);
                    metrics_.reset_gauges(slot.index);
                }
                if (stopping_)
                    break;
                std::string how = WIFSIGNALED(status) ? std::string("signal ") + std::to_string(WTERMSIG(status))
                                                      : "status " + std::to_string(WEXITSTATUS(status));
                log_warn("supervisor",
                         slot.bridge ? "the bridge's process exited, restarting it" : "worker exited, restarting it",
                         {{"worker", slot.index}, {"how", how}});
                if (!slot.bridge)
                    metrics_.count_worker_restart();
                timeval delay{0, 0};
                auto backoff = restart_backoff_.next_delay();
                delay.tv_sec = backoff.count() / 1000;
                delay.tv_usec = (backoff.count() % 1000) * 1000;
                evtimer_add(slot.restart_timer.get(), &delay);
            }
        }
        if (stopping_)
            exit_when_all_gone();
    }

  private:
    struct WorkerSlot {
        int index = 0;
        bool bridge = false; // runs the bridge instead of serving HTTP
        pid_t pid = 0;
        Supervisor *owner = nullptr;
        EventPtr restart_timer;
    };

    static void on_restart_due(evutil_socket_t, short, void *arg) {
        auto &slot = *static_cast<WorkerSlot *>(arg);
        if (!slot.owner->stopping_)
            slot.owner->spawn(slot);
    }

    void spawn(WorkerSlot &slot) {
        if (slot.bridge)
            return spawn_bridge(slot);
        AdmissionChannel channel;
        try {
            channel = make_admission_channel();
        } catch (const std::system_error &error) {
            log_error("supervisor", "cannot make a worker's channel", {{"error", error.what()}});
            timeval later{1, 0};
            evtimer_add(slot.restart_timer.get(), &later);
            return;
        }
        const pid_t pid = fork();
        if (pid == 0) {
            // The child keeps only its channel end and the standard streams: it must not hold the
            // supervisor's ends of other workers' channels, nor the supervisor's loop.
            const int keep = channel.worker_fd;
            close_range(3, static_cast<unsigned>(keep) - 1, 0);
            close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
            sigprocmask(SIG_UNBLOCK, &handled_signals_, nullptr);
            std::_Exit(run_worker(sources_, config_, slot.index, keep, metrics_));
        }
        close(channel.worker_fd);
        if (pid < 0) {
            log_error("supervisor", "cannot fork a worker", {{"error", std::system_category().message(errno)}});
            close(channel.supervisor_fd);
            timeval later{1, 0};
            evtimer_add(slot.restart_timer.get(), &later);
            return;
        }
        slot.pid = pid;
        admission_.attach(slot.index, channel.supervisor_fd);
    }

    void spawn_bridge(WorkerSlot &slot) {
        const pid_t pid = fork();
        if (pid == 0) {
            close_range(3, ~0U, 0);
            sigprocmask(SIG_UNBLOCK, &handled_signals_, nullptr);
            std::_Exit(run_bridge_process(sources_, config_));
        }
        if (pid < 0) {
            log_error("supervisor", "cannot fork the bridge", {{"error", std::system_category().message(errno)}});
            timeval later{1, 0};
            evtimer_add(slot.restart_timer.get(), &later);
            return;
        }
        slot.pid = pid;
    }

    void exit_when_all_gone() {
        for (const WorkerSlot &slot : workers_)
            if (slot.pid > 0)
                return;
        event_base_loopexit(base_, nullptr);
    }

    event_base *base_;
    const ConfigSources &sources_;
    Config config_;
    MetricsArea &metrics_;
    sigset_t handled_signals_; // blocked here, read from the signalfd; workers unblock them
    AdmissionServer admission_;
    Backoff restart_backoff_;
    std::vector<WorkerSlot> workers_;
    bool stopping_ = false;
};

void on_signal(evutil_socket_t fd, short, void *arg) {
    auto &supervisor = *static_cast<Supervisor *>(arg);
    signalfd_siginfo info;
    while (read(fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        const int signal = static_cast<int>(info.ssi_signo);
        if (signal == SIGCHLD)
            supervisor.reap();
        else if (signal == SIGHUP)
            supervisor.reload();
        else
            supervisor.stop(signal);
    }
}

} // namespace

int run_supervisor(const ConfigSources &sources, Config config) {
    std::signal(SIGPIPE, SIG_IGN);
    // One port for every worker, chosen here when it is 0, and held (bound, never listening) so
    // that a port another program owns stops the start instead of every worker.
    int port_holder = -1;
    try {
        port_holder = open_reuseport_socket(config.http.listen, config.http.port, false);
        config.http.port = bound_port(port_holder);
    } catch (const std::system_error &error) {
        log_error("supervisor", "cannot use the HTTP port", {{"error", error.what()}});
        return EX_UNAVAILABLE;
    }
    std::unique_ptr<MetricsArea> metrics;
    try {
        metrics = MetricsArea::create(config.http.workers);
    } catch (const std::exception &error) {
        log_error("supervisor", "cannot map the shared metrics", {{"error", error.what()}});
        return EX_OSERR;
    }
    std::unique_ptr<event_base, decltype(&event_base_free)> base(event_base_new(), event_base_free);
    if (!base) {
        log_error("supervisor", "cannot create the event loop");
        return EX_OSERR;
    }
    // Signals arrive through a signalfd rather than libevent's signal events: libevent keeps one
    // process-wide signal base, which forked workers could only take over with a warning.
    sigset_t handled;
    sigemptyset(&handled);
    for (int signal : {SIGTERM, SIGINT, SIGHUP, SIGCHLD})
        sigaddset(&handled, signal);
    sigprocmask(SIG_BLOCK, &handled, nullptr);
    const int signal_fd = signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC);
    Supervisor supervisor(base.get(), sources, config, *metrics, handled);
    EventPtr signals(event_new(base.get(), signal_fd, EV_READ | EV_PERSIST, on_signal, &supervisor));
    if (signal_fd < 0 || !signals || event_add(signals.get(), nullptr) != 0) {
        log_error("supervisor", "cannot watch signals");
        return EX_OSERR;
    }
    log_info("supervisor", "listening",
             {{"address", config.http.listen}, {"port", config.http.port}, {"workers", config.http.workers}});
    warn_without_secrets(config);
    supervisor.start();
    event_base_dispatch(base.get());
    signals.reset();
    close(signal_fd);
    close(port_holder);
    log_info("supervisor", "stopped");
    return 0;
}

} // namespace pgfeed::notifier
