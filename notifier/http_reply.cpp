#include "http_reply.hpp"

#include "json_text.hpp"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>

namespace pgfeed::notifier {

std::string error_json(const std::string &message) {
    cJSON *object = cJSON_CreateObject();
    cJSON_AddStringToObject(object, "error", message.c_str());
    return json_text(object);
}

void send_reply(evhttp_request *request, int status, const char *reason, const char *content_type,
                const std::string &body) {
    evbuffer *buffer = evbuffer_new();
    evbuffer_add(buffer, body.data(), body.size());
    send_reply(request, status, reason, content_type, buffer);
    evbuffer_free(buffer);
}

void send_reply(evhttp_request *request, int status, const char *reason, const char *content_type, evbuffer *body) {
    evkeyvalq *headers = evhttp_request_get_output_headers(request);
    evhttp_add_header(headers, "Content-Type", content_type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_send_reply(request, status, reason, body);
}

} // namespace pgfeed::notifier
