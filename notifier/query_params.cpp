#include "query_params.hpp"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

namespace pgfeed::notifier {

namespace {

bool contains_nul_escape(std::string_view query) {
    for (std::size_t at = query.find('%'); at != std::string_view::npos; at = query.find('%', at + 1))
        if (query.substr(at + 1, 2) == "00")
            return true;
    return false;
}

// The parsed pairs, freed however parsing ends. Initialized as TAILQ_INIT would (libevent does not
// export it) so that clearing is safe even before evhttp_parse_query_str runs.
struct Pairs {
    evkeyvalq list;
    Pairs() {
        list.tqh_first = nullptr;
        list.tqh_last = &list.tqh_first;
    }
    ~Pairs() { evhttp_clear_headers(&list); }
    Pairs(const Pairs &) = delete;
    Pairs &operator=(const Pairs &) = delete;
};

} // namespace

std::variant<std::vector<std::optional<std::string>>, std::string>
parse_query_params(std::string_view query, const std::vector<std::string_view> &names) {
    if (query.size() > max_query_bytes)
        return "the query string is longer than " + std::to_string(max_query_bytes) + " bytes";
    if (query.find('\0') != std::string_view::npos || contains_nul_escape(query))
        return std::string("the query string contains a NUL byte (%00)");

    Pairs parsed;
    if (evhttp_parse_query_str(std::string(query).c_str(), &parsed.list) != 0)
        return std::string("the query string is not a list of name=value pairs separated by &");

    std::vector<std::optional<std::string>> values(names.size());
    for (const evkeyval *pair = parsed.list.tqh_first; pair != nullptr; pair = pair->next.tqe_next) {
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (pair->key != names[i])
                continue;
            if (values[i])
                return "the parameter " + std::string(names[i]) + " is given more than once";
            values[i] = pair->value;
        }
    }
    return values;
}

} // namespace pgfeed::notifier
