#include "auth.hpp"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <jwt.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <memory>

namespace pgfeed::notifier {

namespace {

struct JwtDeleter {
    void operator()(jwt_t *jwt) const { jwt_free(jwt); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtDeleter>;

struct MallocDeleter {
    void operator()(char *text) const { std::free(text); }
};
using MallocText = std::unique_ptr<char, MallocDeleter>;

struct CjsonDeleter {
    void operator()(cJSON *json) const { cJSON_Delete(json); }
};
using CjsonPtr = std::unique_ptr<cJSON, CjsonDeleter>;

bool is_base64url(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// header.payload.signature, each part base64url. Checked before libjwt sees the token so that a NUL
// byte cannot cut it short and garbage is told apart from a bad signature.
bool well_formed(std::string_view token) {
    std::size_t dots = 0;
    for (char c : token) {
        if (c == '.')
            ++dots;
        else if (!is_base64url(c))
            return false;
    }
    if (dots != 2)
        return false;
    std::size_t first = token.find('.');
    std::size_t second = token.find('.', first + 1);
    return first > 0 && second > first + 1;
}

bool has_control_character(std::string_view text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '\x7f'; });
}

// A claim as JSON text, or null when absent: the text shows what the typed getters hide.
MallocText claim_json(jwt_t *jwt, const char *claim) { return MallocText(jwt_get_grants_json(jwt, claim)); }

std::variant<std::string, AuthFailure> subject_claim(jwt_t *jwt) {
    if (!claim_json(jwt, "sub"))
        return AuthFailure::no_subject;
    // Null unless a JSON string. Strings cannot hide a NUL: jansson refuses \u0000 when parsing.
    const char *sub = jwt_get_grant(jwt, "sub");
    if (!sub)
        return AuthFailure::bad_claims;
    std::string_view user(sub);
    if (user.empty())
        return AuthFailure::no_subject;
    if (user.size() > max_user_bytes || has_control_character(user))
        return AuthFailure::bad_claims;
    return std::string(user);
}

// jwt_get_grant_int cannot tell 0 from "12" or 1.5, so read the JSON text: an optional minus and
// digits that fit in 64 bits (jansson writes reals with a dot or an exponent).
std::optional<int64_t> integer_claim(jwt_t *jwt, const char *claim) {
    MallocText json = claim_json(jwt, claim);
    if (!json)
        return std::nullopt;
    std::string_view text(json.get());
    int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

std::optional<std::vector<std::string>> topics_claim(jwt_t *jwt) {
    MallocText json = claim_json(jwt, "topics");
    if (!json)
        return std::vector<std::string>{};
    CjsonPtr array(cJSON_Parse(json.get()));
    if (!array || !cJSON_IsArray(array.get()) ||
        static_cast<std::size_t>(cJSON_GetArraySize(array.get())) > max_granted_topics)
        return std::nullopt;
    std::vector<std::string> topics;
    const cJSON *item = nullptr;
    cJSON_ArrayForEach(item, array.get()) {
        if (!cJSON_IsString(item) || !valid_topic_pattern(item->valuestring))
            return std::nullopt;
        topics.emplace_back(item->valuestring);
    }
    return topics;
}

// RFC 7519: the token is valid while now < exp; the leeway absorbs clock skew between the issuer
// and this machine. Unsigned subtraction so that no exp value can overflow.
bool expired(int64_t expires_at, int64_t now, int64_t leeway_seconds) {
    if (expires_at > now)
        return false;
    uint64_t past = static_cast<uint64_t>(now) - static_cast<uint64_t>(expires_at);
    return past >= static_cast<uint64_t>(std::max<int64_t>(leeway_seconds, 0));
}

// RFC 7519 section 4.1.5: not accepted before nbf; the leeway absorbs clock skew as for exp.
bool not_yet_valid(int64_t not_before, int64_t now, int64_t leeway_seconds) {
    if (not_before <= now)
        return false;
    uint64_t ahead = static_cast<uint64_t>(not_before) - static_cast<uint64_t>(now);
    return ahead > static_cast<uint64_t>(std::max<int64_t>(leeway_seconds, 0));
}

// RFC 7519 section 4.1.3: `aud` is one string or an array of strings; one of them must be ours.
bool names_audience(jwt_t *jwt, const std::string &audience) {
    MallocText json = claim_json(jwt, "aud");
    CjsonPtr aud(json ? cJSON_Parse(json.get()) : nullptr);
    if (cJSON_IsString(aud.get()))
        return aud->valuestring == audience;
    if (!cJSON_IsArray(aud.get()))
        return false;
    const cJSON *item = nullptr;
    cJSON_ArrayForEach(item, aud.get()) {
        if (cJSON_IsString(item) && item->valuestring == audience)
            return true;
    }
    return false;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view text) {
    const char *space = " \t";
    std::size_t begin = text.find_first_not_of(space);
    if (begin == std::string_view::npos)
        return {};
    std::size_t end = text.find_last_not_of(space);
    return text.substr(begin, end - begin + 1);
}

// "Bearer <token>"; nullopt for another scheme or no token.
std::optional<std::string_view> bearer_token(std::string_view authorization) {
    authorization = trim(authorization);
    std::size_t space = authorization.find_first_of(" \t");
    if (space == std::string_view::npos || !iequals(authorization.substr(0, space), "Bearer"))
        return std::nullopt;
    std::string_view token = trim(authorization.substr(space));
    if (token.empty())
        return std::nullopt;
    return token;
}

// RFC 6265 section 5.4: `name=value` pairs separated by ';'. The first pgfeed_token with a value
// wins (browsers send the cookie of the most specific path first); pairs without '=' are skipped.
std::optional<std::string_view> cookie_token(std::string_view cookies) {
    while (!cookies.empty()) {
        std::size_t semicolon = cookies.find(';');
        std::string_view pair = cookies.substr(0, semicolon);
        cookies = semicolon == std::string_view::npos ? std::string_view() : cookies.substr(semicolon + 1);
        std::size_t equals = pair.find('=');
        if (equals == std::string_view::npos || trim(pair.substr(0, equals)) != "pgfeed_token")
            continue;
        std::string_view value = trim(pair.substr(equals + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
            value = value.substr(1, value.size() - 2);
        if (!value.empty())
            return value;
    }
    return std::nullopt;
}

} // namespace

bool topic_matches(const std::string &pattern, const std::string &topic) {
    if (topic.find('\0') != std::string::npos)
        return false; // fnmatch would see only the part before the NUL
    return fnmatch(pattern.c_str(), topic.c_str(), 0) == 0;
}

const char *auth_failure_name(AuthFailure failure) {
    switch (failure) {
    case AuthFailure::missing:
        return "missing";
    case AuthFailure::malformed:
        return "malformed";
    case AuthFailure::wrong_algorithm:
        return "wrong_algorithm";
    case AuthFailure::bad_signature:
        return "bad_signature";
    case AuthFailure::expired:
        return "expired";
    case AuthFailure::not_yet_valid:
        return "not_yet_valid";
    case AuthFailure::wrong_audience:
        return "wrong_audience";
    case AuthFailure::wrong_issuer:
        return "wrong_issuer";
    case AuthFailure::no_subject:
        return "no_subject";
    case AuthFailure::bad_claims:
        return "bad_claims";
    }
    return "unknown";
}

std::variant<Grant, AuthFailure> verify_token(std::string_view token, const AuthKeys &keys, int64_t now,
                                              int64_t leeway_seconds) {
    if (token.empty())
        return AuthFailure::missing;
    if (token.size() > max_token_bytes || !well_formed(token))
        return AuthFailure::malformed;
    std::string text(token);

    // A first decode without a key verifies nothing; it only tells garbage and foreign algorithms
    // apart from bad signatures, for the logs. Nothing from it is trusted.
    {
        jwt_t *unverified = nullptr;
        if (jwt_decode(&unverified, text.c_str(), nullptr, 0) != 0)
            return AuthFailure::malformed;
        JwtPtr owned(unverified);
        const char *alg = jwt_get_header(unverified, "alg");
        if (!alg || std::string_view(alg) != "HS256")
            return AuthFailure::wrong_algorithm;
    }

    JwtPtr verified;
    for (const std::string &secret : keys.hs256_secrets) {
        if (secret.empty())
            continue;
        jwt_t *jwt = nullptr;
        if (jwt_decode(&jwt, text.c_str(), reinterpret_cast<const unsigned char *>(secret.data()),
                       static_cast<int>(secret.size())) != 0)
            continue;
        verified.reset(jwt);
        // libjwt verifies with the algorithm the token names; only HS256 is ours.
        if (jwt_get_alg(jwt) == JWT_ALG_HS256)
            break;
        verified.reset();
    }
    if (!verified)
        return AuthFailure::bad_signature;

    auto user = subject_claim(verified.get());
    if (auto *failure = std::get_if<AuthFailure>(&user))
        return *failure;
    std::optional<int64_t> expires_at = integer_claim(verified.get(), "exp");
    if (!expires_at)
        return AuthFailure::bad_claims;
    if (expired(*expires_at, now, leeway_seconds))
        return AuthFailure::expired;
    if (claim_json(verified.get(), "nbf")) {
        std::optional<int64_t> not_before = integer_claim(verified.get(), "nbf");
        if (!not_before)
            return AuthFailure::bad_claims;
        if (not_yet_valid(*not_before, now, leeway_seconds))
            return AuthFailure::not_yet_valid;
    }
    if (!keys.audience.empty() && !names_audience(verified.get(), keys.audience))
        return AuthFailure::wrong_audience;
    if (!keys.issuer.empty()) {
        // Null unless a JSON string.
        const char *issuer = jwt_get_grant(verified.get(), "iss");
        if (!issuer || issuer != keys.issuer)
            return AuthFailure::wrong_issuer;
    }
    std::optional<std::vector<std::string>> topics = topics_claim(verified.get());
    if (!topics)
        return AuthFailure::bad_claims;
    return Grant{std::get<std::string>(std::move(user)), std::move(*topics), *expires_at};
}

std::optional<std::string> token_from_request(std::optional<std::string_view> authorization_header,
                                              std::optional<std::string_view> cookie_header,
                                              std::optional<std::string_view> access_token_param) {
    if (authorization_header)
        if (auto token = bearer_token(*authorization_header))
            return std::string(*token);
    if (cookie_header)
        if (auto token = cookie_token(*cookie_header))
            return std::string(*token);
    if (access_token_param && !access_token_param->empty())
        return std::string(*access_token_param);
    return std::nullopt;
}

bool valid_topic_pattern(std::string_view pattern) {
    return !pattern.empty() && pattern.size() <= max_topic_bytes && !has_control_character(pattern) &&
           pattern.find_first_of("?[\\") == std::string_view::npos;
}

bool topic_allowed(const std::vector<std::string> &patterns, std::string_view topic) {
    std::string text(topic);
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const std::string &pattern) { return topic_matches(pattern, text); });
}

std::variant<std::vector<std::string>, std::string> narrow_topics(const Grant &grant,
                                                                  const std::vector<std::string> &requested) {
    if (requested.empty())
        return grant.topics;
    for (const std::string &topic : requested)
        if (!valid_topic_pattern(topic) || !topic_allowed(grant.topics, topic))
            return topic;
    return requested;
}

} // namespace pgfeed::notifier
