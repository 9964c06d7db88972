// Who may open GET /v1/stream, and which topics they may follow (design I6): JWT HS256 tokens
// verified with libjwt, and the rules that narrow a connection to the topics its token grants.
//
// Pure logic, no I/O: the gateway hands in header values and the time, and gets back a Grant or
// the reason for refusing, which goes to the log and to metrics, never to the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pgfeed::notifier {

// What a token must be signed with and name. Several secrets so keys can be rotated: a token
// signed with any of them is accepted. Empty secrets are ignored (libjwt would skip the signature
// check for an empty key). An empty audience or issuer is not checked: tokens minted for another
// service with the same secret are then accepted too.
struct AuthKeys {
    std::vector<std::string> hs256_secrets;
    std::string audience; // [auth] audience: `aud` must be it or an array holding it
    std::string issuer;   // [auth] issuer: `iss` must be exactly it
};

// What a verified token allows.
struct Grant {
    std::string user;                // `sub`: 1..256 bytes, no control characters
    std::vector<std::string> topics; // `topics`: patterns such as "mp_id:7", "mp_id:*", "*"; may be empty
    int64_t expires_at;              // `exp`, seconds since the epoch
};

enum class AuthFailure {
    missing,         // no token at all
    malformed,       // too large, not three base64url parts, or not JSON
    wrong_algorithm, // anything but HS256: "none", HS384, HS512, RS256...
    bad_signature,   // verified by none of the secrets
    expired,         // `exp` passed, leeway included
    not_yet_valid,   // `nbf` still to come, leeway included
    wrong_audience,  // `aud` absent or not naming AuthKeys::audience (when that is set)
    wrong_issuer,    // `iss` absent or not AuthKeys::issuer (when that is set)
    no_subject,      // `sub` absent or empty
    bad_claims,      // `sub`, `exp`, `nbf` or `topics` of the wrong type or shape, `exp` absent
};

// "missing", "malformed", ... as listed above: a label for logs and metrics.
const char *auth_failure_name(AuthFailure failure);

// Tokens are refused above this size before anything parses them.
inline constexpr std::size_t max_token_bytes = 8192;
// Limits on what a token may grant; beyond them it is refused as bad_claims.
inline constexpr std::size_t max_user_bytes = 256;
inline constexpr std::size_t max_topic_bytes = 256;
inline constexpr std::size_t max_granted_topics = 256;

// Checks the signature (HS256 only), then the claims: `sub` a non-empty string, `exp` an integer
// with now < exp + leeway_seconds (a negative leeway counts as 0), `nbf` absent or an integer with
// nbf <= now + leeway_seconds, `aud` and `iss` as AuthKeys asks, `topics` absent or an array of
// valid topic patterns (see valid_topic_pattern).
std::variant<Grant, AuthFailure> verify_token(std::string_view token, const AuthKeys &keys, int64_t now,
                                              int64_t leeway_seconds);

// The token of a request, from the first source that has a non-empty one:
//   1. `Authorization: Bearer <token>` (the scheme is case-insensitive; other schemes are skipped),
//   2. the cookie `pgfeed_token` in the Cookie header (`a=b; pgfeed_token=<token>`; quotes removed),
//   3. the query parameter `access_token`, already percent-decoded (EventSource cannot set headers).
std::optional<std::string> token_from_request(std::optional<std::string_view> authorization_header,
                                              std::optional<std::string_view> cookie_header,
                                              std::optional<std::string_view> access_token_param);

// A topic or pattern as tokens and ?topics= may name it: 1..256 bytes, no control characters, and
// of fnmatch(3)'s special characters only `*` (no `?`, `[`, `\`), which keeps the covering rule of
// narrow_topics sound.
bool valid_topic_pattern(std::string_view pattern);

// Whether an event's topic matches one of the patterns (fnmatch(3), `*` matches any run of
// characters, `:` included).
bool topic_allowed(const std::vector<std::string> &patterns, std::string_view topic);

// Whether one pattern matches `topic` (as topic_allowed, without building a list).
bool topic_matches(const std::string &pattern, const std::string &topic);

// The topics a connection follows when it asks for `requested` (?topics=); an empty request means
// everything the grant allows. A requested topic or pattern is covered when a granted pattern
// matches it as a literal string: "mp_id:7" and "mp_id:*" under "mp_id:*" or "*", but not
// "mp_id:*" under "mp_id:7". Since only `*` is special, a granted pattern that matches a requested
// pattern literally also matches every topic the requested pattern matches, so nothing escalates.
// Returns the first requested entry that is invalid or not covered (the gateway answers 403).
std::variant<std::vector<std::string>, std::string> narrow_topics(const Grant &grant,
                                                                  const std::vector<std::string> &requested);

} // namespace pgfeed::notifier
