// The HTTP feed API of one worker: each call becomes one parameterized query of pgfeed's SQL API
// on the worker's PgPool, for the user of the token, and PostgreSQL builds the JSON answer. This is
// also what browsers poll when push is unavailable, so it needs PostgreSQL only, never Redis.
//
//   GET  /v1/feed?feed=&limit=&before=&unread_only=  a page, newest first, with each item's payload
//   GET  /v1/unread_count?feed=&after=              the badge, and the items above `after`
//   POST /v1/read {"ids": [...]}, /v1/unread       mark activities read or unread
//   POST /v1/read_all {"feed": ..., "up_to": ...}   mark a feed read up to a position
//   GET  /v1/follows, POST /v1/follow {"topic"}, /v1/unfollow
//
// The checks before a call (token, input, which feeds the token may use) are the HttpServer's.
#pragma once

#include "api_budget.hpp"
#include "config.hpp"
#include "feed_request.hpp"
#include "metrics.hpp"
#include "pg_pool.hpp"

#include <memory>
#include <string>

struct event_base;
struct evhttp_request;

namespace pgfeed::notifier {

class FeedApi {
  public:
    FeedApi(event_base *base, const Config &config, WorkerMetrics metrics);

    void start() { pool_.start(); }
    // SIGHUP: the [limits] of the feed API (api_budget.hpp).
    void reconfigure(const Config &config);
    // Runs `call` for the grant's user, bounded by its topics (grant_bound), and answers the request: 200 with
    // PostgreSQL's JSON; 400 when pgfeed refuses an argument; 429 or 503 with Retry-After when the user or the worker
    // is over its budget (api_budget.hpp); 503 with Retry-After when PostgreSQL is unreachable, busy or too slow; 500
    // otherwise. A request whose client has gone is still answered: evhttp then frees it.
    void serve(evhttp_request *request, FeedCall call, const Grant &grant, const FeedRequest &asked);

  private:
    WorkerMetrics metrics_;
    std::shared_ptr<ApiBudget> budget_; // before pool_: pool_'s destructor answers the calls waiting
    PgPool pool_;
};

} // namespace pgfeed::notifier
