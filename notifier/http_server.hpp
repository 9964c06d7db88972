// The HTTP side of one worker: libevent's evhttp on the worker's SO_REUSEPORT socket, routing,
// the checks every request passes before it costs anything (header size, request deadlines and
// connections per address (connection_guard.hpp), framing, per-address token bucket, token,
// topics, Last-Event-ID), CORS, and JSON error replies. Streams themselves belong to the StreamHub.
//
//   GET /v1/stream   Server-Sent Events (see stream_hub.hpp)
//   /v1/feed, ...    the feed API (see feed_api.hpp)
//   GET /, /<name>   the files of http.static_dir (static_files.hpp)
//   GET /metrics     Prometheus text of every worker (metrics.hpp)
//   GET /healthz     200 while this process serves
//   GET /readyz      200 {"mode":"push"} or 503 {"mode":"poll"} (readiness.hpp)
#pragma once

#include "auth.hpp"
#include "config.hpp"
#include "connection_guard.hpp"
#include "feed_request.hpp"
#include "metrics.hpp"
#include "rate_limit.hpp"
#include "static_files.hpp"
#include "trusted_proxies.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct bufferevent;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;

namespace pgfeed::notifier {

class FeedApi;
class StreamHub;
class Readiness;

class HttpServer {
  public:
    // Serves on listen_fd (a listening socket, which the server then owns). Throws
    // std::runtime_error when evhttp cannot be set up.
    HttpServer(event_base *base, const Config &config, int listen_fd, int worker, StreamHub &hub,
               const Readiness &readiness, const MetricsArea &metrics_area, WorkerMetrics metrics);
    ~HttpServer();
    HttpServer(const HttpServer &) = delete;
    HttpServer &operator=(const HttpServer &) = delete;

    // SIGHUP: limits, CORS origins, keys, header limits and the static directory for requests from
    // now on. Throws std::invalid_argument (bad CORS list or rates) or std::runtime_error (static
    // directory) and then changes nothing.
    void reconfigure(const Config &config);
    // SIGTERM: closes the listening socket; connections already accepted are served on.
    void stop_accepting();

    // Answers `request` with `status` and {"error": message}.
    void refuse(evhttp_request *request, int status, const char *reason, const char *message);

  private:
    static bufferevent *on_new_connection(event_base *base, void *self);
    static void on_request(evhttp_request *request, void *self);
    static void on_reply_sent(evhttp_request *request, void *self);
    void route(evhttp_request *request);
    std::optional<Grant> authenticate(evhttp_request *request, const std::optional<std::string> &access_token,
                                      const std::string &client);
    void serve_stream(evhttp_request *request, const std::string &client);
    void serve_feed_call(evhttp_request *request, FeedCall call, const std::string &client);
    void add_cors_headers(evhttp_request *request);
    void answer_preflight(evhttp_request *request, const char *allowed_methods);

    evhttp *http_;
    evhttp_bound_socket *socket_;
    int worker_;
    StreamHub &hub_;
    const Readiness &readiness_;
    const MetricsArea &metrics_area_;
    WorkerMetrics metrics_;
    std::unique_ptr<FeedApi> feed_api_;
    StaticFiles static_files_;
    AuthKeys keys_;
    int leeway_seconds_;
    std::vector<std::string> cors_origins_;
    TokenBuckets new_connections_;
    int retry_after_seconds_;
    TrustedProxies trusted_proxies_; // whose X-Forwarded-For names the client
    // Request deadlines, connections per address, the file limit (connection_guard.hpp).
    ConnectionGuard connections_;
};

// The secrets of [auth] hs256_secrets, split at commas, spaces trimmed.
AuthKeys auth_keys(const Config &config);

} // namespace pgfeed::notifier
