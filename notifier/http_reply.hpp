// Replies every endpoint sends alike: JSON bodies, errors as {"error": "..."}, never cached.
#pragma once

#include <string>

struct evbuffer;
struct evhttp_request;

namespace pgfeed::notifier {

// {"error": message}, quoted by cJSON.
std::string error_json(const std::string &message);

// Sends `body` with `status` and Content-Type, and Cache-Control: no-store.
void send_reply(evhttp_request *request, int status, const char *reason, const char *content_type,
                const std::string &body);
// The same with the body in `body`, which the reply takes the bytes of.
void send_reply(evhttp_request *request, int status, const char *reason, const char *content_type, evbuffer *body);

inline void send_json(evhttp_request *request, int status, const char *reason, const std::string &body) {
    send_reply(request, status, reason, "application/json", body);
}

} // namespace pgfeed::notifier
