#include "http_server.hpp"

#include "cors.hpp"
#include "feed_api.hpp"
#include "feed_request.hpp"
#include "http_framing.hpp"
#include "http_reply.hpp"
#include "log.hpp"
#include "readiness.hpp"
#include "stream_hub.hpp"
#include "stream_request.hpp"
#include "text.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <chrono>
#include <ctime>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <variant>

namespace pgfeed::notifier {

namespace {

// Buckets kept for client addresses in debt; beyond, the oldest is forgotten (rate_limit.hpp).
constexpr std::size_t kMaxRateLimitedAddresses = 100000;
// The feed API's bodies are small JSON objects (1,000 ids fit in 20 KB); anything larger is
// refused by evhttp (413) before it is read.
constexpr int kMaxBodyBytes = 65536;

std::optional<std::string_view> header(evhttp_request *request, const char *name) {
    const char *value = evhttp_find_header(evhttp_request_get_input_headers(request), name);
    return value ? std::optional<std::string_view>(value) : std::nullopt;
}

// What the per-address limits count the request under (address_key): its peer's address, or the
// client a trusted proxy names in X-Forwarded-For (every such header, in order, as one list).
std::string client_key(evhttp_request *request, const TrustedProxies &trusted) {
    const sockaddr *peer = evhttp_connection_get_addr(evhttp_request_get_connection(request));
    const auto ip = peer ? ip_address_of(peer) : std::nullopt;
    if (!ip)
        return "";
    std::string forwarded_for;
    if (trusted.trusts(*ip)) {
        const evkeyvalq *headers = evhttp_request_get_input_headers(request);
        for (const evkeyval *field = headers->tqh_first; field; field = field->next.tqe_next) {
            if (evutil_ascii_strcasecmp(field->key, "X-Forwarded-For") != 0)
                continue;
            if (!forwarded_for.empty())
                forwarded_for += ',';
            forwarded_for += field->value;
        }
    }
    return address_key(trusted.client_of(*ip, forwarded_for));
}

ConnectionLimits connection_limits(const Config &config, TrustedProxies trusted) {
    return ConnectionLimits{config.limits.connections_per_address,
                            std::chrono::milliseconds(config.http.header_timeout_ms), std::move(trusted)};
}

} // namespace

AuthKeys auth_keys(const Config &config) {
    AuthKeys keys;
    for (std::string_view secret : split_commas(config.auth.hs256_secrets))
        if (!trim_blanks(secret).empty())
            keys.hs256_secrets.emplace_back(trim_blanks(secret));
    keys.audience = config.auth.audience;
    keys.issuer = config.auth.issuer;
    return keys;
}

HttpServer::HttpServer(event_base *base, const Config &config, int listen_fd, int worker, StreamHub &hub,
                       const Readiness &readiness, const MetricsArea &metrics_area, WorkerMetrics metrics)
    : http_(evhttp_new(base)), socket_(nullptr), worker_(worker), hub_(hub), readiness_(readiness),
      metrics_area_(metrics_area), metrics_(metrics), feed_api_(std::make_unique<FeedApi>(base, config, metrics)),
      static_files_(config.http.static_dir),
      new_connections_(config.limits.new_connections_per_second, config.limits.new_connections_burst,
                       kMaxRateLimitedAddresses),
      connections_(base, metrics, connection_limits(config, TrustedProxies::parse(config.http.trusted_proxies))) {
    if (!http_)
        throw std::runtime_error("cannot create the HTTP server");
    socket_ = evhttp_accept_socket_with_handle(http_, listen_fd);
    if (!socket_) {
        evhttp_free(http_);
        throw std::runtime_error("cannot serve on the listening socket");
    }
    // Every method reaches route(), which answers 405 itself, with an Allow header.
    evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                          EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(http_, kMaxBodyBytes);
    evhttp_set_gencb(http_, on_request, this);
    evhttp_set_bevcb(http_, on_new_connection, this);
    connections_.watch(evhttp_bound_socket_get_listener(socket_));
    reconfigure(config);
    feed_api_->start();
}

HttpServer::~HttpServer() {
    // First: its queries still waiting answer their requests, which evhttp_free would free.
    feed_api_.reset();
    evhttp_free(http_); // lets go of every connection before connections_ drops its references
}

bufferevent *HttpServer::on_new_connection(event_base *, void *self) {
    return static_cast<HttpServer *>(self)->connections_.accepted();
}

void HttpServer::on_reply_sent(evhttp_request *request, void *self) {
    if (evhttp_connection *connection = evhttp_request_get_connection(request))
        static_cast<HttpServer *>(self)->connections_.reply_sent(evhttp_connection_get_bufferevent(connection));
}

void HttpServer::reconfigure(const Config &config) {
    std::vector<std::string> origins = parse_cors_origins(config.http.cors_origins);
    TrustedProxies trusted = TrustedProxies::parse(config.http.trusted_proxies);
    StaticFiles static_files(config.http.static_dir);
    new_connections_.reconfigure(config.limits.new_connections_per_second, config.limits.new_connections_burst);
    cors_origins_ = std::move(origins);
    static_files_ = std::move(static_files);
    keys_ = auth_keys(config);
    leeway_seconds_ = config.auth.leeway_seconds;
    retry_after_seconds_ = std::max(1, config.http.retry_ms / 1000);
    evhttp_set_max_headers_size(http_, config.http.max_header_bytes);
    connections_.reconfigure(connection_limits(config, trusted));
    trusted_proxies_ = std::move(trusted);
    feed_api_->reconfigure(config);
    // evhttp's read timeout: the longest silence while a request is read, which also ends idle
    // keep-alive connections. A stream turns it off once it starts (stream_hub.cpp).
    timeval header_timeout{config.http.header_timeout_ms / 1000, (config.http.header_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(http_, &header_timeout);
}

void HttpServer::stop_accepting() {
    if (socket_) {
        connections_.watch(nullptr);
        evhttp_del_accept_socket(http_, socket_);
        socket_ = nullptr;
    }
}

void HttpServer::on_request(evhttp_request *request, void *self) { static_cast<HttpServer *>(self)->route(request); }

void HttpServer::route(evhttp_request *request) {
    evhttp_request_set_on_complete_cb(request, on_reply_sent, this);
    const std::string client = client_key(request, trusted_proxies_);
    add_cors_headers(request);
    if (!connections_.request_arrived(evhttp_connection_get_bufferevent(evhttp_request_get_connection(request)),
                                      client)) {
        metrics_.add(Counter::rejected_address_limit);
        evkeyvalq *headers = evhttp_request_get_output_headers(request);
        evhttp_add_header(headers, "Retry-After", "1");
        evhttp_add_header(headers, "Connection", "close");
        return refuse(request, 429, "Too Many Requests", "too many connections from this address");
    }
    const evhttp_uri *uri = evhttp_request_get_evhttp_uri(request);
    const char *raw_path = uri ? evhttp_uri_get_path(uri) : nullptr;
    const std::string_view path = raw_path ? raw_path : "";
    const auto method = evhttp_request_get_command(request);

    const std::optional<FeedCall> feed_call = feed_call_at(path);
    Counter counted = Counter::http_other;
    if (path == "/v1/stream")
        counted = Counter::http_stream;
    else if (path == "/metrics")
        counted = Counter::http_metrics;
    else if (path == "/healthz")
        counted = Counter::http_healthz;
    else if (path == "/readyz")
        counted = Counter::http_readyz;
    else if (feed_call)
        counted = Counter::http_api;
    else if (static_files_.enabled() && path.substr(0, 4) != "/v1/")
        counted = Counter::http_static;
    metrics_.add(counted);
    if (!header(request, "Host")) { // RFC 9112: every HTTP/1.1 request names its host
        metrics_.add(Counter::rejected_bad_request);
        return refuse(request, 400, "Bad Request", "a Host header is required");
    }
    if (auto problem = ambiguous_framing(evhttp_request_get_input_headers(request))) {
        // What follows the body as evhttp read it may be a smuggled request: never read it.
        metrics_.add(Counter::rejected_framing);
        evhttp_add_header(evhttp_request_get_output_headers(request), "Connection", "close");
        return refuse(request, 400, "Bad Request", problem->c_str());
    }
    if (counted == Counter::http_other) {
        metrics_.add(Counter::rejected_not_found);
        return refuse(request, 404, "Not Found",
                      "no such endpoint; see /v1/stream, /v1/feed, /v1/unread_count, /v1/read, /v1/unread, "
                      "/v1/read_all, /v1/follows, /v1/follow, /v1/unfollow, /metrics, /healthz, /readyz");
    }
    // What each endpoint answers besides OPTIONS.
    const bool writes = feed_call && feed_call_writes(*feed_call);
    const char *allowed = writes                            ? "POST, OPTIONS"
                          : counted == Counter::http_static ? "GET, HEAD, OPTIONS"
                                                            : "GET, OPTIONS";
    if (method == EVHTTP_REQ_OPTIONS)
        return answer_preflight(request, allowed);
    const bool method_fits =
        writes ? method == EVHTTP_REQ_POST
               : method == EVHTTP_REQ_GET || (counted == Counter::http_static && method == EVHTTP_REQ_HEAD);
    if (!method_fits) {
        metrics_.add(Counter::rejected_method_not_allowed);
        evhttp_add_header(evhttp_request_get_output_headers(request), "Allow", allowed);
        return refuse(request, 405, "Method Not Allowed",
                      writes ? "only POST is served here" : "only GET is served here");
    }
    if (counted == Counter::http_stream)
        return serve_stream(request, client);
    if (feed_call)
        return serve_feed_call(request, *feed_call, client);
    if (counted == Counter::http_static)
        return static_files_.serve(request, path);
    if (counted == Counter::http_metrics)
        return send_reply(request, 200, "OK", kMetricsContentType, metrics_area_.render());
    if (counted == Counter::http_healthz)
        return send_json(request, 200, "OK", "{\"status\":\"ok\",\"worker\":" + std::to_string(worker_) + "}");
    const bool ready = readiness_.ready();
    send_json(request, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", readiness_.json());
}

// The token's grant, or nullopt after answering 401.
std::optional<Grant> HttpServer::authenticate(evhttp_request *request, const std::optional<std::string> &access_token,
                                              const std::string &client) {
    auto token = token_from_request(header(request, "Authorization"), header(request, "Cookie"),
                                    access_token ? std::optional<std::string_view>(*access_token) : std::nullopt);
    const auto now = static_cast<int64_t>(std::time(nullptr));
    auto verified = token ? verify_token(*token, keys_, now, leeway_seconds_)
                          : std::variant<Grant, AuthFailure>(AuthFailure::missing);
    if (auto *failure = std::get_if<AuthFailure>(&verified)) {
        metrics_.add(Counter::rejected_unauthorized);
        log_info("http", "token refused", {{"reason", auth_failure_name(*failure)}, {"client", client}});
        evhttp_add_header(evhttp_request_get_output_headers(request), "WWW-Authenticate", "Bearer");
        refuse(request, 401, "Unauthorized",
               *failure == AuthFailure::missing ? "a token is required" : "the token is not valid");
        return std::nullopt;
    }
    return std::get<Grant>(std::move(verified));
}

void HttpServer::serve_stream(evhttp_request *request, const std::string &client) {
    auto retry_in = new_connections_.take(client, TokenBuckets::Clock::now());
    if (retry_in) {
        metrics_.add(Counter::rejected_rate_limited);
        evhttp_add_header(evhttp_request_get_output_headers(request), "Retry-After",
                          std::to_string(retry_in->count()).c_str());
        return refuse(request, 429, "Too Many Requests", "too many new connections from this address");
    }
    const evhttp_uri *uri = evhttp_request_get_evhttp_uri(request);
    const char *query = uri ? evhttp_uri_get_query(uri) : nullptr;
    auto parsed = parse_stream_request(query ? query : "", header(request, "Last-Event-ID"));
    if (auto *error = std::get_if<std::string>(&parsed)) {
        metrics_.add(Counter::rejected_bad_request);
        return refuse(request, 400, "Bad Request", error->c_str());
    }
    StreamRequest &asked = std::get<StreamRequest>(parsed);

    std::optional<Grant> grant = authenticate(request, asked.access_token, client);
    if (!grant)
        return;
    auto topics = narrow_topics(*grant, asked.topics);
    if (std::holds_alternative<std::string>(topics)) {
        metrics_.add(Counter::rejected_forbidden);
        return refuse(request, 403, "Forbidden", "a requested topic is outside what the token grants");
    }
    if (!hub_.ready()) {
        metrics_.add(Counter::rejected_unavailable);
        evhttp_add_header(evhttp_request_get_output_headers(request), "Retry-After",
                          std::to_string(retry_after_seconds_).c_str());
        return refuse(request, 503, "Service Unavailable", "events are unavailable; poll the feed");
    }
    hub_.open(request, std::move(grant->user), std::move(std::get<std::vector<std::string>>(topics)),
              asked.last_event_id);
}

// A body that is not declared JSON is refused: besides catching mistakes, this keeps a cookie
// from authorizing a cross-site form post, since browsers preflight a JSON POST (CORS).
void HttpServer::serve_feed_call(evhttp_request *request, FeedCall call, const std::string &client) {
    if (feed_call_writes(call)) {
        auto type = header(request, "Content-Type");
        const std::string_view media = type ? trim_blanks(type->substr(0, type->find(';'))) : std::string_view();
        if (media.size() != 16 || evutil_ascii_strncasecmp(media.data(), "application/json", 16) != 0) {
            metrics_.add(Counter::rejected_unsupported_media);
            return refuse(request, 415, "Unsupported Media Type",
                          "the body must be JSON (Content-Type: application/json)");
        }
    }
    evbuffer *input = evhttp_request_get_input_buffer(request);
    const std::size_t length = evbuffer_get_length(input);
    const std::string_view body(reinterpret_cast<const char *>(evbuffer_pullup(input, -1)), length);
    const evhttp_uri *uri = evhttp_request_get_evhttp_uri(request);
    const char *query = uri ? evhttp_uri_get_query(uri) : nullptr;
    auto parsed = parse_feed_request(call, query ? query : "", body);
    if (auto *error = std::get_if<std::string>(&parsed)) {
        metrics_.add(Counter::rejected_bad_request);
        return refuse(request, 400, "Bad Request", error->c_str());
    }
    const FeedRequest &asked = std::get<FeedRequest>(parsed);
    std::optional<Grant> grant = authenticate(request, asked.access_token, client);
    if (!grant)
        return;
    const bool feed_named = call == FeedCall::page || call == FeedCall::unread_count || call == FeedCall::read_all;
    if ((feed_named && !may_use_feed(*grant, asked.feed)) ||
        ((call == FeedCall::follow || call == FeedCall::unfollow) && !may_follow(*grant, asked.topic))) {
        metrics_.add(Counter::rejected_forbidden);
        return refuse(request, 403, "Forbidden", "the token does not grant that feed or topic");
    }
    feed_api_->serve(request, call, *grant, asked);
}

void HttpServer::refuse(evhttp_request *request, int status, const char *reason, const char *message) {
    send_json(request, status, reason, error_json(message));
}

void HttpServer::add_cors_headers(evhttp_request *request) {
    evkeyvalq *headers = evhttp_request_get_output_headers(request);
    evhttp_add_header(headers, "Vary", "Origin");
    auto origin = header(request, "Origin");
    if (!origin || !origin_allowed(cors_origins_, *origin))
        return;
    evhttp_add_header(headers, "Access-Control-Allow-Origin", std::string(*origin).c_str());
    evhttp_add_header(headers, "Access-Control-Allow-Credentials", "true");
}

void HttpServer::answer_preflight(evhttp_request *request, const char *allowed_methods) {
    evkeyvalq *headers = evhttp_request_get_output_headers(request);
    if (evhttp_find_header(headers, "Access-Control-Allow-Origin")) {
        evhttp_add_header(headers, "Access-Control-Allow-Methods", allowed_methods);
        evhttp_add_header(headers, "Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID");
        evhttp_add_header(headers, "Access-Control-Max-Age", "600");
    }
    evhttp_send_reply(request, 204, "No Content", nullptr);
}

} // namespace pgfeed::notifier
