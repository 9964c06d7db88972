#include "cors.hpp"

#include "text.hpp"

#include <algorithm>
#include <stdexcept>

namespace pgfeed::notifier {

namespace {

// Longer than any real origin (a host name is at most 253 bytes); refused before looking further.
constexpr std::size_t max_origin_bytes = 1024;
// At most this much of a bad entry goes into the exception message.
constexpr std::size_t quoted_bytes = 100;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowercase(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char c) { return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f'); }
bool is_name_character(char c) {
    return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'z') || c == '-' || c == '_' || c == '.';
}

// A host name or IPv4 address: dot-separated non-empty labels. IPv4 needs no rule of its own; a
// malformed one such as 1.2.3.999 cannot match any Origin a browser sends.
bool valid_host_name(std::string_view host) {
    if (host.empty() || host.size() > 253 || !std::all_of(host.begin(), host.end(), is_name_character))
        return false;
    return host.front() != '.' && host.back() != '.' && host.find("..") == std::string_view::npos;
}

// The inside of [...]: hex digits and colons, dots for an embedded IPv4 (::ffff:1.2.3.4).
bool valid_ipv6_literal(std::string_view address) {
    return address.find(':') != std::string_view::npos &&
           std::all_of(address.begin(), address.end(), [](char c) { return is_hex_digit(c) || c == ':' || c == '.'; });
}

bool valid_port(std::string_view port) {
    if (port.empty() || port.size() > 5 || port.front() == '0' || !std::all_of(port.begin(), port.end(), is_digit))
        return false;
    return std::stoi(std::string(port)) <= 65535;
}

struct Normalized {
    std::string origin;            // valid when problem is null
    const char *problem = nullptr; // what is wrong, for the exception message
};

Normalized normalize_origin(std::string_view text) {
    if (text.size() > max_origin_bytes)
        return {{}, "is too long"};
    if (text == "null")
        return {{}, "is the opaque origin \"null\", which is never allowed"};
    if (text.find('*') != std::string_view::npos)
        return {{}, "has a `*`: credentials are sent, so list exact origins"};
    std::size_t separator = text.find("://");
    if (separator == std::string_view::npos)
        return {{}, "is not scheme://host[:port]"};
    std::string scheme = lowercase(text.substr(0, separator));
    if (scheme != "http" && scheme != "https")
        return {{}, "has a scheme other than http or https"};
    std::string_view authority = text.substr(separator + 3);
    if (authority.find_first_of("/?#") != std::string_view::npos)
        return {{}, "has a path, query or fragment (an origin has not even a trailing slash)"};
    if (authority.find('@') != std::string_view::npos)
        return {{}, "has user information"};

    std::string_view host, port;
    if (!authority.empty() && authority.front() == '[') {
        std::size_t close = authority.find(']');
        if (close == std::string_view::npos || !valid_ipv6_literal(authority.substr(1, close - 1)))
            return {{}, "has a malformed IPv6 address"};
        host = authority.substr(0, close + 1);
        authority.remove_prefix(close + 1);
        if (!authority.empty() && authority.front() != ':')
            return {{}, "has text after the IPv6 address"};
        port = authority.empty() ? std::string_view() : authority.substr(1);
        if (!authority.empty() && port.empty())
            return {{}, "has an empty port"};
    } else {
        std::size_t colon = authority.find(':');
        host = authority.substr(0, colon);
        if (!valid_host_name(host))
            return {{}, "has a malformed host"};
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty())
                return {{}, "has an empty port"};
        }
    }
    if (!port.empty() && !valid_port(port))
        return {{}, "has a port that is not 1..65535 without leading zeros"};

    std::string origin = scheme + "://" + lowercase(host);
    bool default_port = (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
    if (!port.empty() && !default_port)
        origin.append(":").append(port);
    return {origin, nullptr};
}

} // namespace

std::vector<std::string> parse_cors_origins(std::string_view comma_list) {
    std::vector<std::string> origins;
    if (trim_blanks(comma_list).empty())
        return origins;
    for (std::string_view part : split_commas(comma_list)) {
        std::string_view entry = trim_blanks(part);
        if (entry.empty())
            throw std::invalid_argument("cors_origins has an empty entry (separate origins with single commas)");
        Normalized normalized = normalize_origin(entry);
        if (normalized.problem)
            throw std::invalid_argument("cors_origins: " + quoted_prefix(entry, quoted_bytes) + " " +
                                        normalized.problem +
                                        "; an origin is scheme://host[:port], e.g. https://app.example.com");
        origins.push_back(std::move(normalized.origin));
    }
    return origins;
}

bool origin_allowed(const std::vector<std::string> &allowlist, std::string_view origin) {
    if (allowlist.empty())
        return false;
    Normalized normalized = normalize_origin(origin);
    return !normalized.problem && std::find(allowlist.begin(), allowlist.end(), normalized.origin) != allowlist.end();
}

} // namespace pgfeed::notifier
