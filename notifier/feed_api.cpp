#include "feed_api.hpp"

#include "http_reply.hpp"
#include "link_options.hpp"
#include "log.hpp"

#include <event2/buffer.h>
#include <event2/http.h>

#include <string_view>

namespace pgfeed::notifier {

namespace {

// The sessions' search_path is pg_catalog (pg_pool.hpp), so built-in names need no schema.
constexpr const char *page_sql =
    "SELECT json_build_object('feed', $2::text, 'items', coalesce(json_agg(json_build_object("
    "'position', p.position, 'activity_id', p.activity_id, 'source', p.source::text, 'topic', p.topic, "
    "'created_at', p.created_at, 'is_read', p.is_read, 'payload', pgfeed.payload(p.source, p.activity_id)) "
    "ORDER BY p.position DESC), '[]'), "
    "'next_before', CASE WHEN count(*) = $3::int THEN min(p.position) END)::text "
    "FROM pgfeed.page($1::text, $2::text, $3::int, $4::bigint, $5::bool, $6::text[]) p";
constexpr const char *unread_count_sql =
    "SELECT json_build_object('feed', $2::text, 'unread', pgfeed.unread_count($1::text, $2::text, $3::text[]))::text";
constexpr const char *unread_count_since_sql =
    "SELECT json_build_object('feed', $2::text, 'unread', pgfeed.unread_count($1::text, $2::text, $4::text[]), "
    "'new', pgfeed.count_since($1::text, $2::text, $3::bigint, $4::text[]))::text";
// Ids outside the grant's bound count as missing ones: a token learns nothing of them.
constexpr const char *read_sql =
    "SELECT json_build_object('changed', pgfeed.mark_read($1::text, $2::bigint[], NULL, $3::text[]))::text";
constexpr const char *unread_sql =
    "SELECT json_build_object('changed', pgfeed.mark_unread($1::text, $2::bigint[], NULL, $3::text[]))::text";
constexpr const char *read_all_sql =
    "SELECT json_build_object('changed', pgfeed.mark_all_read($1::text, $2::text, $3::bigint, $4::text[]))::text";
constexpr const char *follows_sql = "SELECT json_build_object('topics', coalesce((SELECT json_agg(t ORDER BY t) "
                                    "FROM pgfeed.following($1::text, $2::text[]) t), '[]'))::text";
constexpr const char *follow_sql = "SELECT json_build_object('changed', pgfeed.follow($1::text, $2::text))::text";
constexpr const char *unfollow_sql = "SELECT json_build_object('changed', pgfeed.unfollow($1::text, $2::text))::text";

std::optional<std::string> optional_number(std::optional<int64_t> value) {
    return value ? std::optional<std::string>(std::to_string(*value)) : std::nullopt;
}

std::string int8_array(const std::vector<int64_t> &ids) {
    std::string text = "{";
    for (int64_t id : ids) {
        if (text.size() > 1)
            text += ',';
        text += std::to_string(id);
    }
    return text + "}";
}

struct Query {
    const char *sql;
    PgLink::Params params;
};

// `bound`: grant_bound of the token, passed as pgfeed's `within` (NULL: no bound).
Query query_for(FeedCall call, const std::string &user, const FeedRequest &asked,
                const std::optional<std::string> &bound) {
    switch (call) {
    case FeedCall::page:
        return {page_sql,
                {user, asked.feed, std::to_string(asked.limit), optional_number(asked.before),
                 asked.unread_only ? "true" : "false", bound}};
    case FeedCall::unread_count:
        if (asked.after)
            return {unread_count_since_sql, {user, asked.feed, std::to_string(*asked.after), bound}};
        return {unread_count_sql, {user, asked.feed, bound}};
    case FeedCall::read:
        return {read_sql, {user, int8_array(asked.ids), bound}};
    case FeedCall::unread:
        return {unread_sql, {user, int8_array(asked.ids), bound}};
    case FeedCall::read_all:
        return {read_all_sql, {user, asked.feed, optional_number(asked.up_to), bound}};
    case FeedCall::follows:
        return {follows_sql, {user, bound}};
    case FeedCall::follow:
        return {follow_sql, {user, asked.topic}};
    case FeedCall::unfollow:
        return {unfollow_sql, {user, asked.topic}};
    }
    return {follows_sql, {user}}; // not reached: every call is listed
}

// SQLSTATEs that mean "try again later": the session is gone or the server cannot take the query
// now (08 connection, 53 resources, 57 operator intervention and statement_timeout's 57014, 40
// serialization and deadlock). Our own "not connected" and "busy" have none.
bool temporary(const PgResult &result) {
    std::string_view state = result.sqlstate;
    return state.empty() || state.substr(0, 2) == "08" || state.substr(0, 2) == "53" || state.substr(0, 2) == "57" ||
           state.substr(0, 2) == "40";
}

// pgfeed refuses bad arguments with data exceptions (22...) and 54000 for too many ids; its
// messages say what is wrong and are meant for the caller.
bool refused_argument(const PgResult &result) {
    std::string_view state = result.sqlstate;
    return state.substr(0, 2) == "22" || state == "54000";
}

ApiLimits api_limits(const Config &config) {
    return ApiLimits{config.limits.api_calls_per_user, config.limits.api_unsent_bytes_per_user,
                     config.limits.api_unsent_bytes};
}

// 429 or 503 with Retry-After, or false when the call may go on.
bool refused_by_budget(evhttp_request *request, ApiAdmission admission, WorkerMetrics &metrics) {
    if (admission == ApiAdmission::admitted)
        return false;
    evhttp_add_header(evhttp_request_get_output_headers(request), "Retry-After", "1");
    if (admission == ApiAdmission::user_calls) {
        metrics.add(Counter::rejected_api_user_calls);
        send_json(request, 429, "Too Many Requests", error_json("too many feed calls of this user at once"));
    } else if (admission == ApiAdmission::user_unsent) {
        metrics.add(Counter::rejected_api_user_unsent);
        send_json(request, 429, "Too Many Requests", error_json("this user's earlier replies are still unread"));
    } else {
        metrics.add(Counter::rejected_api_unsent);
        send_json(request, 503, "Service Unavailable", error_json("too many replies are still unread; try again"));
    }
    return true;
}

} // namespace

FeedApi::FeedApi(event_base *base, const Config &config, WorkerMetrics metrics)
    : metrics_(metrics), budget_(ApiBudget::create(api_limits(config))),
      pool_(base, PgPoolOptions{pg_link_options(config), config.api.sessions,
                                std::chrono::milliseconds(config.api.statement_timeout_ms),
                                static_cast<std::size_t>(config.api.max_waiting)}) {}

void FeedApi::reconfigure(const Config &config) { budget_->reconfigure(api_limits(config)); }

void FeedApi::serve(evhttp_request *request, FeedCall call, const Grant &grant, const FeedRequest &asked) {
    const std::string &user = grant.user;
    if (refused_by_budget(request, budget_->admit(user), metrics_))
        return;
    Query query = query_for(call, user, asked, grant_bound(grant));
    budget_->call_started(user);
    pool_.query(query.sql, std::move(query.params),
                [request, metrics = metrics_, budget = budget_, user](const PgResult &result) mutable {
                    budget->call_finished(user);
                    if (result.ok && result.rows.size() == 1 && result.rows[0].size() == 1 && result.rows[0][0]) {
                        evbuffer *body = evbuffer_new();
                        budget->add_reply(body, user, *result.rows[0][0]);
                        send_reply(request, 200, "OK", "application/json", body);
                        return evbuffer_free(body);
                    }
                    if (!result.ok && refused_argument(result)) {
                        metrics.add(Counter::rejected_bad_request);
                        return send_json(request, 400, "Bad Request", error_json(result.error));
                    }
                    if (!result.ok && temporary(result)) {
                        metrics.add(Counter::rejected_database);
                        log_info("feed_api", "query failed", {{"error", result.error}, {"sqlstate", result.sqlstate}});
                        evhttp_add_header(evhttp_request_get_output_headers(request), "Retry-After", "1");
                        return send_json(request, 503, "Service Unavailable",
                                         error_json("the feed is unavailable; try again"));
                    }
                    metrics.add(Counter::rejected_internal);
                    log_error("feed_api", "query failed", {{"error", result.error}, {"sqlstate", result.sqlstate}});
                    send_json(request, 500, "Internal Server Error",
                              error_json("the feed could not be read; see the server's log"));
                });
}

} // namespace pgfeed::notifier
