#include "pg_link.hpp"

#include "log.hpp"

#include <event2/event.h>
#include <libpq-fe.h>

#include <utility>

namespace pgfeed::notifier {

namespace {

constexpr const char *kComponent = "pg";

timeval to_timeval(std::chrono::milliseconds delay) {
    return {static_cast<time_t>(delay.count() / 1000), static_cast<suseconds_t>(delay.count() % 1000 * 1000)};
}

// libpq's messages end in a newline and may span indented lines; a log field or an error wants one
// line, so each run of whitespace becomes one space.
std::string one_line(const char *message) {
    std::string text;
    for (const char *c = message ? message : ""; *c; ++c) {
        bool space = *c == ' ' || *c == '\n' || *c == '\t';
        if (!space)
            text += *c;
        else if (!text.empty() && text.back() != ' ')
            text += ' ';
    }
    if (!text.empty() && text.back() == ' ')
        text.pop_back();
    return text.empty() ? "unknown error" : text;
}

const char *or_empty(const char *text) { return text ? text : ""; }

void log_notice(void *, const PGresult *notice) {
    std::string severity = or_empty(PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED));
    bool routine = severity == "NOTICE" || severity == "INFO" || severity == "LOG" || severity == "DEBUG";
    log_line(routine ? LogLevel::info : LogLevel::warn, kComponent, "server notice",
             {{"severity", severity}, {"message", one_line(PQresultErrorField(notice, PG_DIAG_MESSAGE_PRIMARY))}});
}

} // namespace

PgLink::PgLink(event_base *base, PgLinkOptions options, PgLinkCallbacks callbacks)
    : base_(base), options_(std::move(options)), callbacks_(std::move(callbacks)),
      backoff_(options_.retry_initial, options_.retry_max), send_ev_(event_new(base, -1, 0, on_send_due, this)),
      connect_timer_(evtimer_new(base, on_connect_timeout, this)), retry_timer_(evtimer_new(base, on_retry_due, this)) {
}

PgLink::~PgLink() {
    *alive_ = false;
    stop();
}

void PgLink::start() {
    if (state_ != State::stopped)
        return;
    backoff_.reset();
    connect();
}

void PgLink::stop() {
    if (state_ == State::stopped)
        return;
    std::deque<Pending> pending = close_session();
    event_del(retry_timer_.get());
    state_ = State::stopped;
    fail(std::move(pending), "link stopped");
}

void PgLink::query(std::string sql, Params params, Done done) {
    if (state_ != State::ready) {
        PgResult failed;
        failed.error = "not connected";
        done(failed);
        return;
    }
    queue_.push_back({std::move(sql), std::move(params), std::move(done)});
    // Sent from the loop, so that a failing send never runs callbacks inside query().
    if (!in_flight_)
        event_active(send_ev_.get(), EV_TIMEOUT, 0);
}

void PgLink::connect() {
    state_ = State::connecting;
    timeval timeout = to_timeval(options_.connect_timeout);
    evtimer_add(connect_timer_.get(), &timeout);
    conn_ = PQconnectStart(options_.conninfo.c_str());
    if (!conn_) {
        drop("out of memory");
        return;
    }
    if (PQstatus(conn_) == CONNECTION_BAD) {
        drop(one_line(PQerrorMessage(conn_)));
        return;
    }
    // libpq's default prints notices to stderr; they belong in the log, such as the FATAL message
    // that pg_terminate_backend sends to an idle session.
    PQsetNoticeReceiver(conn_, log_notice, nullptr);
    // As libpq documents: right after PQconnectStart, wait as if PQconnectPoll had asked to write.
    watch_socket(EV_WRITE);
}

void PgLink::poll_connect() {
    switch (PQconnectPoll(conn_)) {
    case PGRES_POLLING_READING:
        watch_socket(EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        watch_socket(EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(conn_, 1) != 0) {
            drop(one_line(PQerrorMessage(conn_)));
            return;
        }
        state_ = State::listening;
        watch_socket(EV_READ | EV_PERSIST);
        write_ev_.reset(event_new(base_, PQsocket(conn_), EV_WRITE, on_write_ready, this));
        listen_channels();
        return;
    default:
        drop(one_line(PQerrorMessage(conn_)));
        return;
    }
}

// Each channel's LISTEN goes through the query queue; the last one's success makes the session ready.
void PgLink::listen_channels() {
    if (options_.channels.empty()) {
        become_ready();
        return;
    }
    for (std::size_t i = 0; i < options_.channels.size(); ++i) {
        const std::string &channel = options_.channels[i];
        char *quoted = PQescapeIdentifier(conn_, channel.data(), channel.size());
        if (!quoted) {
            drop(one_line(PQerrorMessage(conn_)));
            return;
        }
        std::string sql = std::string("LISTEN ") + quoted;
        PQfreemem(quoted);
        bool last = i + 1 == options_.channels.size();
        queue_.push_back({std::move(sql), {}, [this, session = session_, last](const PgResult &result) {
                              if (session != session_)
                                  return; // the attempt failed or was stopped; that path reports it
                              if (!result.ok)
                                  drop("LISTEN failed: " + result.error);
                              else if (last)
                                  become_ready();
                          }});
    }
    send_next();
}

void PgLink::become_ready() {
    event_del(connect_timer_.get());
    state_ = State::ready;
    backoff_.reset();
    log_info(
        kComponent, "session ready",
        {{"host", or_empty(PQhost(conn_))}, {"port", or_empty(PQport(conn_))}, {"backend_pid", PQbackendPID(conn_)}});
    if (callbacks_.on_ready)
        callbacks_.on_ready();
}

// PQconnectPoll may switch to another socket (another host, or a retry without SSL), so the event
// is made anew for the socket and direction it asks for each time.
void PgLink::watch_socket(short what) {
    socket_ev_.reset(event_new(base_, PQsocket(conn_), what, on_socket_event, this));
    event_add(socket_ev_.get(), nullptr);
}

void PgLink::on_readable() {
    if (!PQconsumeInput(conn_)) {
        drop(one_line(PQerrorMessage(conn_)));
        return;
    }
    if (read_results())
        drain_notifies();
}

void PgLink::send_next() {
    if (in_flight_ || queue_.empty() || !conn_)
        return;
    const Pending &next = queue_.front();
    std::vector<const char *> values;
    values.reserve(next.params.size());
    for (const std::optional<std::string> &param : next.params)
        values.push_back(param ? param->c_str() : nullptr);
    if (!PQsendQueryParams(conn_, next.sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                           nullptr, 0)) {
        drop(one_line(PQerrorMessage(conn_)));
        return;
    }
    in_flight_ = true;
    current_ = PgResult{};
    current_.ok = true;
    flush();
}

// In non-blocking mode PQsendQueryParams may leave part of the query in libpq's buffer: the rest
// goes out when the socket takes it. Replies are read meanwhile, as the read event stays armed.
void PgLink::flush() {
    int rc = PQflush(conn_);
    if (rc < 0)
        drop(one_line(PQerrorMessage(conn_)));
    else if (rc == 1)
        event_add(write_ev_.get(), nullptr);
}

// Completes the in-flight query once libpq has all of its results, then sends the next one.
// Returns false when a callback stopped, restarted or destroyed the link, or the session dropped.
bool PgLink::read_results() {
    while (in_flight_) {
        if (PQisBusy(conn_))
            return true;
        if (PGresult *res = PQgetResult(conn_)) {
            bool usable = collect(res);
            ExecStatusType status = PQresultStatus(res);
            PQclear(res);
            if (!usable) {
                drop(std::string("unsupported result status ") + PQresStatus(status));
                return false;
            }
            continue;
        }
        Pending finished = std::move(queue_.front());
        queue_.pop_front();
        in_flight_ = false;
        PgResult result = std::move(current_);
        Checkpoint checkpoint = this->checkpoint();
        finished.done(result);
        if (!checkpoint.intact())
            return false;
        send_next();
        if (!checkpoint.intact())
            return false;
    }
    return true;
}

// Adds one of libpq's results for the in-flight query to current_. False for a result libpq
// would never follow with the NULL that ends the query (COPY).
bool PgLink::collect(const PGresult *res) {
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK: {
        int columns = PQnfields(res);
        int rows = PQntuples(res);
        current_.columns.clear();
        for (int c = 0; c < columns; ++c)
            current_.columns.emplace_back(PQfname(res, c));
        current_.rows.clear();
        current_.rows.reserve(static_cast<std::size_t>(rows));
        for (int r = 0; r < rows; ++r) {
            std::vector<std::optional<std::string>> &row = current_.rows.emplace_back();
            row.reserve(static_cast<std::size_t>(columns));
            for (int c = 0; c < columns; ++c) {
                if (PQgetisnull(res, r, c))
                    row.emplace_back(std::nullopt);
                else
                    row.emplace_back(
                        std::string(PQgetvalue(res, r, c), static_cast<std::size_t>(PQgetlength(res, r, c))));
            }
        }
        return true;
    }
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
        return true;
    case PGRES_BAD_RESPONSE:
    case PGRES_NONFATAL_ERROR:
    case PGRES_FATAL_ERROR:
        if (current_.ok) {
            const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            current_ = PgResult{};
            current_.error = one_line(primary ? primary : PQresultErrorMessage(res));
            current_.sqlstate = or_empty(PQresultErrorField(res, PG_DIAG_SQLSTATE));
        }
        return true;
    default:
        return false;
    }
}

// Notifications wait in libpq until the session is ready, so on_notify never precedes on_ready.
bool PgLink::drain_notifies() {
    while (state_ == State::ready) {
        PGnotify *notify = PQnotifies(conn_);
        if (!notify)
            return true;
        std::string channel = notify->relname;
        PQfreemem(notify);
        if (!callbacks_.on_notify)
            continue;
        Checkpoint checkpoint = this->checkpoint();
        callbacks_.on_notify(channel);
        if (!checkpoint.intact())
            return false;
    }
    return true;
}

// The session or the attempt is over: fail its queries, report a lost session, retry later.
void PgLink::drop(const std::string &reason) {
    bool was_ready = state_ == State::ready;
    std::chrono::milliseconds retry_in = backoff_.next_delay();
    if (was_ready)
        log_warn(kComponent, "session lost",
                 {{"host", or_empty(PQhost(conn_))}, {"error", reason}, {"retry_in_ms", retry_in.count()}});
    else
        log_connect_failure(reason, retry_in);
    std::deque<Pending> pending = close_session();
    state_ = State::waiting_to_retry;
    timeval delay = to_timeval(retry_in);
    evtimer_add(retry_timer_.get(), &delay);

    Checkpoint checkpoint = this->checkpoint();
    fail(std::move(pending), "connection lost: " + reason);
    if (was_ready && checkpoint.intact() && callbacks_.on_lost)
        callbacks_.on_lost();
}

// host and port, not the conninfo: that may hold a password.
void PgLink::log_connect_failure(const std::string &reason, std::chrono::milliseconds retry_in) const {
    log_warn(kComponent, "connect failed",
             {{"host", or_empty(conn_ ? PQhost(conn_) : nullptr)},
              {"port", or_empty(conn_ ? PQport(conn_) : nullptr)},
              {"error", reason},
              {"retry_in_ms", retry_in.count()}});
}

// Static: the callbacks may destroy the link, and the queries still to fail are no longer its own.
void PgLink::fail(std::deque<Pending> pending, const std::string &error) {
    PgResult failed;
    failed.error = error;
    for (Pending &p : pending)
        p.done(failed);
}

// Closes the connection and its events; returns the queries it leaves unanswered.
std::deque<PgLink::Pending> PgLink::close_session() {
    socket_ev_.reset();
    write_ev_.reset();
    event_del(send_ev_.get());
    event_del(connect_timer_.get());
    if (conn_) {
        PQfinish(conn_);
        conn_ = nullptr;
    }
    in_flight_ = false;
    current_ = PgResult{};
    ++session_;
    return std::exchange(queue_, {});
}

void PgLink::on_socket_event(int, short, void *arg) {
    auto *link = static_cast<PgLink *>(arg);
    if (link->state_ == State::connecting)
        link->poll_connect();
    else
        link->on_readable();
}

void PgLink::on_write_ready(int, short, void *arg) { static_cast<PgLink *>(arg)->flush(); }

void PgLink::on_send_due(int, short, void *arg) { static_cast<PgLink *>(arg)->send_next(); }

void PgLink::on_connect_timeout(int, short, void *arg) {
    auto *link = static_cast<PgLink *>(arg);
    link->drop("timed out after " + std::to_string(link->options_.connect_timeout.count()) + " ms");
}

void PgLink::on_retry_due(int, short, void *arg) { static_cast<PgLink *>(arg)->connect(); }

} // namespace pgfeed::notifier
