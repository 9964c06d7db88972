#include "feed_request.hpp"

#include "query_params.hpp"
#include "text.hpp"

#include <cjson/cJSON.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <memory>

namespace pgfeed::notifier {

namespace {

// At most this much of a client's input goes back into an error message.
constexpr std::size_t quoted_bytes = 40;
// 2^53: below it, every integer written in JSON is read exactly (a double's 53-bit mantissa).
constexpr double max_exact_integer = 9007199254740992.0;
constexpr std::size_t max_feed_bytes = 256;

struct CallPath {
    std::string_view path;
    FeedCall call;
};
constexpr std::array<CallPath, 8> call_paths{{
    {"/v1/feed", FeedCall::page},
    {"/v1/unread_count", FeedCall::unread_count},
    {"/v1/read", FeedCall::read},
    {"/v1/unread", FeedCall::unread},
    {"/v1/read_all", FeedCall::read_all},
    {"/v1/follows", FeedCall::follows},
    {"/v1/follow", FeedCall::follow},
    {"/v1/unfollow", FeedCall::unfollow},
}};

using Error = std::string;

// A non-negative decimal without sign or spaces, as positions are written in URLs.
std::optional<int64_t> decimal(std::string_view text) {
    int64_t value = 0;
    if (text.empty() || text.front() < '0' || text.front() > '9')
        return std::nullopt;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

bool has_control_character(std::string_view text) {
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f)
            return true;
    return false;
}

std::optional<Error> read_feed_name(const std::string &value, FeedRequest &request) {
    if (value.empty() || value.size() > max_feed_bytes || has_control_character(value))
        return "feed must be 1 to " + std::to_string(max_feed_bytes) + " bytes long, without control characters";
    request.feed = value;
    return std::nullopt;
}

std::optional<Error> read_query(FeedCall call, std::string_view query, FeedRequest &request) {
    // Only this call's own names: another call's parameters are ignored like any unknown one.
    const bool paged = call == FeedCall::page, counted = call == FeedCall::unread_count;
    std::vector<std::string_view> names = {"access_token"};
    if (paged)
        names.insert(names.end(), {"feed", "limit", "before", "unread_only"});
    if (counted)
        names.insert(names.end(), {"feed", "after"});
    auto parsed = parse_query_params(query, names);
    if (auto *error = std::get_if<Error>(&parsed))
        return std::move(*error);
    const auto &values = std::get<std::vector<std::optional<std::string>>>(parsed);
    auto value = [&](std::string_view name) -> const std::optional<std::string> & {
        return values[static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin())];
    };
    if (value("access_token") && !value("access_token")->empty())
        request.access_token = *value("access_token");
    if (!paged && !counted)
        return std::nullopt;
    if (const auto &feed = value("feed"))
        if (auto error = read_feed_name(*feed, request))
            return error;
    if (counted) {
        if (const auto &after = value("after")) {
            request.after = decimal(*after);
            if (!request.after)
                return "after must be a position (a whole number, not negative), " +
                       quoted_prefix(*after, quoted_bytes) + " is not";
        }
        return std::nullopt;
    }
    if (const auto &limit = value("limit")) {
        auto number = decimal(*limit);
        if (!number || *number < 1 || *number > max_page_size)
            return "limit must be a whole number from 1 to " + std::to_string(max_page_size);
        request.limit = static_cast<int>(*number);
    }
    if (const auto &before = value("before")) {
        request.before = decimal(*before);
        if (!request.before)
            return "before must be a position (a whole number, not negative), " + quoted_prefix(*before, quoted_bytes) +
                   " is not";
    }
    if (const auto &flag = value("unread_only")) {
        if (*flag != "true" && *flag != "false" && *flag != "1" && *flag != "0")
            return std::string("unread_only must be true, false, 1 or 0");
        request.unread_only = *flag == "true" || *flag == "1";
    }
    return std::nullopt;
}

// Whether a number outside the strings of `json` has a fraction or an exponent. cJSON keeps only
// its double, on which 4503599627370496.5 or 9007199254740993 can no longer be told from another
// whole number, so whole numbers are judged by how they are written.
bool has_non_integer_number(std::string_view json) {
    constexpr std::string_view number_chars = "0123456789+-.eE";
    bool in_string = false;
    for (std::size_t i = 0; i < json.size(); ++i) {
        const char c = json[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            std::size_t end = i;
            while (end < json.size() && number_chars.find(json[end]) != std::string_view::npos)
                ++end;
            if (json.substr(i, end - i).find_first_of(".eE") != std::string_view::npos)
                return true;
            i = end - 1;
        }
    }
    return false;
}

std::optional<int64_t> exact_integer(const cJSON *item) {
    if (!cJSON_IsNumber(item))
        return std::nullopt;
    const double value = item->valuedouble;
    if (!std::isfinite(value) || std::trunc(value) != value || std::fabs(value) >= max_exact_integer)
        return std::nullopt;
    return static_cast<int64_t>(value);
}

std::optional<Error> read_ids(const cJSON *ids, FeedRequest &request) {
    if (!cJSON_IsArray(ids))
        return Error("ids must be an array of activity ids, e.g. {\"ids\": [101, 102]}");
    const int count = cJSON_GetArraySize(ids);
    if (count < 1 || static_cast<std::size_t>(count) > max_ids_per_call)
        return "ids must hold 1 to " + std::to_string(max_ids_per_call) + " activity ids";
    for (const cJSON *id = ids->child; id; id = id->next) {
        auto value = exact_integer(id);
        if (!value)
            return Error("every id must be a whole number below 2^53 in magnitude");
        request.ids.push_back(*value);
    }
    return std::nullopt;
}

std::optional<Error> read_body(FeedCall call, std::string_view body, FeedRequest &request) {
    if (!feed_call_writes(call)) {
        if (!trim_blanks(body).empty())
            return Error("this endpoint takes no body");
        return std::nullopt;
    }
    // cJSON ends its strings at a NUL, so one in a string (escaped, or raw, which is not even JSON)
    // would cut it short unseen.
    if (body.find('\0') != std::string_view::npos || body.find("\\u0000") != std::string_view::npos)
        return Error("the body contains a NUL character");
    if (has_non_integer_number(body))
        return Error("every number must be a whole number, written without a fraction or an exponent");
    const char *end = nullptr;
    std::unique_ptr<cJSON, decltype(&cJSON_Delete)> root(
        cJSON_ParseWithLengthOpts(body.data(), body.size(), &end, false), cJSON_Delete);
    // cJSON stops after the first value: anything but blanks after it makes the body no JSON at all.
    if (root &&
        body.find_first_not_of(" \t\r\n", static_cast<std::size_t>(end - body.data())) != std::string_view::npos)
        root.reset();
    if (!root || !cJSON_IsObject(root.get()))
        return Error("the body must be a JSON object");
    bool has_ids = false, has_topic = false;
    for (const cJSON *member = root->child; member; member = member->next) {
        const std::string_view key = member->string ? member->string : "";
        for (const cJSON *other = root->child; other != member; other = other->next)
            if (key == other->string)
                return "the key " + quoted_prefix(key, quoted_bytes) + " is given more than once";
        const bool marks = call == FeedCall::read || call == FeedCall::unread;
        const bool follows = call == FeedCall::follow || call == FeedCall::unfollow;
        if (marks && key == "ids") {
            has_ids = true;
            if (auto error = read_ids(member, request))
                return error;
        } else if (call == FeedCall::read_all && key == "feed") {
            if (!cJSON_IsString(member))
                return Error("feed must be a string such as \"all\", \"following\" or \"mp_id:7\"");
            if (auto error = read_feed_name(member->valuestring, request))
                return error;
        } else if (call == FeedCall::read_all && key == "up_to") {
            if (cJSON_IsNull(member))
                continue;
            request.up_to = exact_integer(member);
            if (!request.up_to || *request.up_to < 0)
                return Error("up_to must be a position (a whole number, not negative) or null");
        } else if (follows && key == "topic") {
            if (!cJSON_IsString(member) || !valid_topic_pattern(member->valuestring) ||
                std::string_view(member->valuestring).find('*') != std::string_view::npos)
                return Error("topic must be a topic such as \"mp_id:7\" (1 to 256 bytes, no control characters or *)");
            has_topic = true;
            request.topic = member->valuestring;
        } else {
            return "unknown key " + quoted_prefix(key, quoted_bytes) + " in the body";
        }
    }
    if ((call == FeedCall::read || call == FeedCall::unread) && !has_ids)
        return Error("the body must name the activity ids, e.g. {\"ids\": [101, 102]}");
    if ((call == FeedCall::follow || call == FeedCall::unfollow) && !has_topic)
        return Error("the body must name the topic, e.g. {\"topic\": \"mp_id:7\"}");
    return std::nullopt;
}

} // namespace

std::optional<FeedCall> feed_call_at(std::string_view path) {
    for (const CallPath &entry : call_paths)
        if (entry.path == path)
            return entry.call;
    return std::nullopt;
}

bool feed_call_writes(FeedCall call) {
    return call != FeedCall::page && call != FeedCall::unread_count && call != FeedCall::follows;
}

std::variant<FeedRequest, std::string> parse_feed_request(FeedCall call, std::string_view query,
                                                          std::string_view body) {
    FeedRequest request;
    if (auto error = read_query(call, query, request))
        return std::move(*error);
    if (auto error = read_body(call, body, request))
        return std::move(*error);
    return request;
}

bool may_use_feed(const Grant &grant, const std::string &feed) {
    if (feed == "following")
        return true;
    if (feed == "all") {
        for (const std::string &pattern : grant.topics)
            if (pattern == "*")
                return true;
        return false;
    }
    return topic_allowed(grant.topics, feed);
}

bool may_follow(const Grant &grant, const std::string &topic) { return topic_allowed(grant.topics, topic); }

std::optional<std::string> grant_bound(const Grant &grant) {
    std::string literal = "{";
    for (const std::string &pattern : grant.topics) {
        if (pattern == "*")
            return std::nullopt;
        // valid_topic_pattern leaves `*` as the only wildcard: no `?`, `[` or backslash.
        std::string like;
        for (char c : pattern) {
            if (c == '%' || c == '_')
                like += '\\';
            like += c == '*' ? '%' : c;
        }
        literal += literal.size() > 1 ? ",\"" : "\"";
        for (char c : like) {
            if (c == '"' || c == '\\')
                literal += '\\'; // array literal quoting
            literal += c;
        }
        literal += '"';
    }
    return literal + "}";
}

} // namespace pgfeed::notifier
