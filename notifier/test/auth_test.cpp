// Unit tests of token verification and topic narrowing (notifier/auth.hpp). Tokens are signed in
// the test with libjwt itself; the hostile ones (alg "none", foreign algorithms) are built by hand.
#include "auth.hpp"

#include <gtest/gtest.h>
#include <jwt.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace pgfeed::notifier {
namespace {

constexpr int64_t now = 1'700'000'000;
const std::string secret = "current-secret-of-32-bytes-or-so";
const std::string old_secret = "previous-secret-still-accepted!!";

// A token signed by libjwt with `alg` and `key` over the claims `claims_json`.
std::string signed_token(jwt_alg_t alg, const std::string &key, const std::string &claims_json) {
    jwt_t *raw = nullptr;
    EXPECT_EQ(jwt_new(&raw), 0);
    std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, jwt_free);
    EXPECT_EQ(jwt_add_grants_json(jwt.get(), claims_json.c_str()), 0) << claims_json;
    auto key_bytes = key.empty() ? nullptr : reinterpret_cast<const unsigned char *>(key.data());
    EXPECT_EQ(jwt_set_alg(jwt.get(), alg, key_bytes, static_cast<int>(key.size())), 0);
    char *encoded = jwt_encode_str(jwt.get());
    EXPECT_NE(encoded, nullptr);
    std::string token = encoded ? encoded : "";
    std::free(encoded);
    return token;
}

std::string hs256(const std::string &claims_json, const std::string &key = secret) {
    return signed_token(JWT_ALG_HS256, key, claims_json);
}

// Claims valid for an hour, with `extra` members appended.
std::string claims(const std::string &extra = "") {
    std::string json = R"({"sub":"alice","exp":)" + std::to_string(now + 3600);
    return json + (extra.empty() ? "" : "," + extra) + "}";
}

AuthKeys secrets(std::vector<std::string> list) {
    AuthKeys keys;
    keys.hs256_secrets = std::move(list);
    return keys;
}

std::variant<Grant, AuthFailure> verify(const std::string &token, const AuthKeys &keys = secrets({secret}),
                                        int64_t leeway = 0) {
    return verify_token(token, keys, now, leeway);
}

// The failure, or a test failure if the token was accepted.
AuthFailure failure_of(const std::variant<Grant, AuthFailure> &result) {
    if (auto *failure = std::get_if<AuthFailure>(&result))
        return *failure;
    ADD_FAILURE() << "token accepted for user " << std::get<Grant>(result).user;
    return AuthFailure::missing;
}

Grant grant_of(const std::variant<Grant, AuthFailure> &result) {
    if (auto *grant = std::get_if<Grant>(&result))
        return *grant;
    ADD_FAILURE() << "token refused: " << auth_failure_name(std::get<AuthFailure>(result));
    return {};
}

// Payload {"sub":"alice","exp":4102444800,"topics":["*"]} in base64url, for hand-built tokens.
const std::string wide_payload = "eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMCwidG9waWNzIjpbIioiXX0";

TEST(VerifyToken, AcceptsAValidToken) {
    Grant grant = grant_of(verify(hs256(claims(R"("topics":["mp_id:7","mp_id:*","*"])"))));
    EXPECT_EQ(grant.user, "alice");
    EXPECT_EQ(grant.topics, (std::vector<std::string>{"mp_id:7", "mp_id:*", "*"}));
    EXPECT_EQ(grant.expires_at, now + 3600);
}

TEST(VerifyToken, NoTopicsClaimMeansOnlyPrivateEvents) {
    EXPECT_TRUE(grant_of(verify(hs256(claims()))).topics.empty());
    EXPECT_TRUE(grant_of(verify(hs256(claims(R"("topics":[])")))).topics.empty());
}

TEST(VerifyToken, ExpiryWithAndWithoutLeeway) {
    auto expiring_at = [](int64_t exp) { return hs256(R"({"sub":"alice","exp":)" + std::to_string(exp) + "}"); };
    EXPECT_EQ(grant_of(verify(expiring_at(now + 1))).expires_at, now + 1);
    EXPECT_EQ(failure_of(verify(expiring_at(now))), AuthFailure::expired);
    EXPECT_EQ(failure_of(verify(expiring_at(now - 1))), AuthFailure::expired);
    EXPECT_EQ(grant_of(verify(expiring_at(now - 30), secrets({secret}), 60)).expires_at, now - 30);
    EXPECT_EQ(failure_of(verify(expiring_at(now - 60), secrets({secret}), 60)), AuthFailure::expired);
    EXPECT_EQ(failure_of(verify(expiring_at(now), secrets({secret}), -100)), AuthFailure::expired);
    // Extreme values neither overflow nor pass.
    EXPECT_EQ(failure_of(verify(expiring_at(INT64_MIN + 1), secrets({secret}), INT64_MAX)), AuthFailure::expired);
    EXPECT_EQ(grant_of(verify(expiring_at(INT64_MAX))).expires_at, INT64_MAX);
}

TEST(VerifyToken, NotBeforeWithAndWithoutLeeway) {
    auto valid_from = [](const std::string &nbf) { return hs256(claims(R"("nbf":)" + nbf)); };
    EXPECT_EQ(grant_of(verify(valid_from(std::to_string(now)))).user, "alice");
    EXPECT_EQ(grant_of(verify(valid_from(std::to_string(now - 100)))).user, "alice");
    EXPECT_EQ(failure_of(verify(valid_from(std::to_string(now + 1)))), AuthFailure::not_yet_valid);
    EXPECT_EQ(failure_of(verify(valid_from(std::to_string(now + 3000)))), AuthFailure::not_yet_valid);
    EXPECT_EQ(grant_of(verify(valid_from(std::to_string(now + 30)), secrets({secret}), 30)).user, "alice");
    EXPECT_EQ(failure_of(verify(valid_from(std::to_string(now + 31)), secrets({secret}), 30)),
              AuthFailure::not_yet_valid);
    EXPECT_EQ(failure_of(verify(valid_from(std::to_string(INT64_MAX)), secrets({secret}), 3600)),
              AuthFailure::not_yet_valid);
    EXPECT_EQ(grant_of(verify(valid_from(std::to_string(INT64_MIN)))).user, "alice");
    for (const char *bad : {R"("soon")", "1.5", "null", "[1]", "true"})
        EXPECT_EQ(failure_of(verify(valid_from(bad))), AuthFailure::bad_claims) << bad;
}

TEST(VerifyToken, AudienceWhenConfigured) {
    AuthKeys ours = secrets({secret});
    ours.audience = "pgfeed";
    EXPECT_EQ(grant_of(verify(hs256(claims(R"("aud":"pgfeed")")), ours)).user, "alice");
    EXPECT_EQ(grant_of(verify(hs256(claims(R"("aud":["billing","pgfeed"])")), ours)).user, "alice");
    EXPECT_EQ(failure_of(verify(hs256(claims()), ours)), AuthFailure::wrong_audience);
    for (const char *aud : {R"("billing")", R"(["billing"])", "[]", R"("pgfeed2")", R"("PGFEED")", "1", "null",
                            R"({"pgfeed":1})", R"([["pgfeed"]])"})
        EXPECT_EQ(failure_of(verify(hs256(claims(std::string(R"("aud":)") + aud)), ours)), AuthFailure::wrong_audience)
            << aud;
    // Not configured: not checked.
    EXPECT_EQ(grant_of(verify(hs256(claims(R"("aud":"billing")")))).user, "alice");
}

TEST(VerifyToken, IssuerWhenConfigured) {
    AuthKeys ours = secrets({secret});
    ours.issuer = "https://app.example.com";
    EXPECT_EQ(grant_of(verify(hs256(claims(R"("iss":"https://app.example.com")")), ours)).user, "alice");
    EXPECT_EQ(failure_of(verify(hs256(claims()), ours)), AuthFailure::wrong_issuer);
    for (const char *iss : {R"("https://evil.example.com")", R"("https://app.example.com/")",
                            R"(["https://app.example.com"])", "1", "null"})
        EXPECT_EQ(failure_of(verify(hs256(claims(std::string(R"("iss":)") + iss)), ours)), AuthFailure::wrong_issuer)
            << iss;
    EXPECT_EQ(grant_of(verify(hs256(claims(R"("iss":"anyone")")))).user, "alice");
}

TEST(VerifyToken, RefusesAWrongSecret) {
    EXPECT_EQ(failure_of(verify(hs256(claims(), "someone-elses-secret"))), AuthFailure::bad_signature);
}

TEST(VerifyToken, AcceptsEveryRotatedSecret) {
    AuthKeys rotating = secrets({secret, old_secret});
    EXPECT_EQ(grant_of(verify(hs256(claims(), secret), rotating)).user, "alice");
    EXPECT_EQ(grant_of(verify(hs256(claims(), old_secret), rotating)).user, "alice");
    EXPECT_EQ(failure_of(verify(hs256(claims(), old_secret))), AuthFailure::bad_signature);
}

TEST(VerifyToken, NoUsableSecretAcceptsNothing) {
    // libjwt skips the signature check when given an empty key; an empty secret must not do that.
    EXPECT_EQ(failure_of(verify(hs256(claims()), AuthKeys{})), AuthFailure::bad_signature);
    EXPECT_EQ(failure_of(verify(hs256(claims()), secrets({""}))), AuthFailure::bad_signature);
}

TEST(VerifyToken, RefusesATamperedPayload) {
    std::string token = hs256(claims());
    std::size_t first = token.find('.'), second = token.find('.', first + 1);
    std::string tampered = token.substr(0, first + 1) + wide_payload + token.substr(second);
    EXPECT_EQ(failure_of(verify(tampered)), AuthFailure::bad_signature);
}

TEST(VerifyToken, NeverAcceptsAlgNone) {
    for (std::string header : {"eyJhbGciOiJub25lIn0", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"}) {
        EXPECT_EQ(failure_of(verify(header + "." + wide_payload + ".")), AuthFailure::wrong_algorithm);
        EXPECT_EQ(failure_of(verify(header + "." + wide_payload + ".c2lnbmF0dXJl")), AuthFailure::wrong_algorithm);
    }
    EXPECT_EQ(failure_of(verify(signed_token(JWT_ALG_NONE, "", claims()))), AuthFailure::wrong_algorithm);
}

TEST(VerifyToken, RefusesOtherAlgorithmsEvenWithTheRightSecret) {
    EXPECT_EQ(failure_of(verify(signed_token(JWT_ALG_HS384, secret, claims()))), AuthFailure::wrong_algorithm);
    EXPECT_EQ(failure_of(verify(signed_token(JWT_ALG_HS512, secret, claims()))), AuthFailure::wrong_algorithm);
    std::string rs256_header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
    EXPECT_EQ(failure_of(verify(rs256_header + "." + wide_payload + ".c2lnbmF0dXJl")), AuthFailure::wrong_algorithm);
}

TEST(VerifyToken, Subject) {
    EXPECT_EQ(failure_of(verify(hs256(R"({"exp":)" + std::to_string(now + 60) + "}"))), AuthFailure::no_subject);
    auto with_sub = [](const std::string &sub_json) {
        return hs256(R"({"sub":)" + sub_json + R"(,"exp":)" + std::to_string(now + 60) + "}");
    };
    EXPECT_EQ(failure_of(verify(with_sub(R"("")"))), AuthFailure::no_subject);
    EXPECT_EQ(failure_of(verify(with_sub("5"))), AuthFailure::bad_claims);
    EXPECT_EQ(failure_of(verify(with_sub("null"))), AuthFailure::bad_claims);
    EXPECT_EQ(failure_of(verify(with_sub(R"(["alice"])"))), AuthFailure::bad_claims);
    EXPECT_EQ(failure_of(verify(with_sub(R"("bob\nalice")"))), AuthFailure::bad_claims);
    EXPECT_EQ(grant_of(verify(with_sub('"' + std::string(max_user_bytes, 'u') + '"'))).user.size(), max_user_bytes);
    EXPECT_EQ(failure_of(verify(with_sub('"' + std::string(max_user_bytes + 1, 'u') + '"'))), AuthFailure::bad_claims);
}

TEST(VerifyToken, RefusesAnEmbeddedNul) {
    // A \u0000 would cut `sub` short in libjwt's C strings ("bob\u0000alice" read as "bob"); jansson
    // refuses it while parsing, before any signature check. Payload:
    // {"sub":"bob\u0000alice","exp":4102444800}
    std::string hs256_header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    std::string payload = "eyJzdWIiOiJib2JcdTAwMDBhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0";
    EXPECT_EQ(failure_of(verify(hs256_header + "." + payload + ".c2lnbmF0dXJl")), AuthFailure::malformed);
}

TEST(VerifyToken, ExpiryMustBeAnInteger) {
    EXPECT_EQ(failure_of(verify(hs256(R"({"sub":"alice"})"))), AuthFailure::bad_claims);
    EXPECT_EQ(failure_of(verify(hs256(R"({"sub":"alice","exp":"4102444800"})"))), AuthFailure::bad_claims);
    EXPECT_EQ(failure_of(verify(hs256(R"({"sub":"alice","exp":4102444800.0})"))), AuthFailure::bad_claims);
    EXPECT_EQ(failure_of(verify(hs256(R"({"sub":"alice","exp":4.1e9})"))), AuthFailure::bad_claims);
    EXPECT_EQ(failure_of(verify(hs256(R"({"sub":"alice","exp":null})"))), AuthFailure::bad_claims);
}

TEST(VerifyToken, TopicsMustBeAnArrayOfPatterns) {
    for (std::string topics :
         {R"("mp_id:7")", "7", "null", R"({"mp_id":7})", "[1]", R"(["mp_id:7",null])", R"(["mp_id:7",["x"]])",
          R"([""])", R"(["mp_id:?"])", R"(["mp_id:[0-9]"])", R"(["a\\*"])", R"(["a\tb"])"})
        EXPECT_EQ(failure_of(verify(hs256(claims(R"("topics":)" + topics)))), AuthFailure::bad_claims) << topics;

    std::string many = "[";
    for (std::size_t i = 0; i <= max_granted_topics; ++i)
        many += (i ? ",\"t:" : "\"t:") + std::to_string(i) + "\"";
    many += "]";
    EXPECT_EQ(failure_of(verify(hs256(claims(R"("topics":)" + many)))), AuthFailure::bad_claims);
    std::string long_topic = '"' + std::string(max_topic_bytes + 1, 't') + '"';
    EXPECT_EQ(failure_of(verify(hs256(claims(R"("topics":[)" + long_topic + "]")))), AuthFailure::bad_claims);
}

TEST(VerifyToken, RefusesAnOversizeTokenBeforeParsing) {
    std::string padded = hs256(claims(R"("pad":")" + std::string(max_token_bytes, 'p') + '"'));
    ASSERT_GT(padded.size(), max_token_bytes);
    EXPECT_EQ(failure_of(verify(padded)), AuthFailure::malformed);
}

TEST(VerifyToken, MalformedStrings) {
    EXPECT_EQ(failure_of(verify("")), AuthFailure::missing);
    std::string valid = hs256(claims());
    for (const std::string &token :
         {std::string("abc"), std::string("a.b"), std::string("a.b.c"), std::string(".."), std::string("a..c"),
          std::string(".b.c"), std::string("a.b.c.d"), std::string("Bearer a.b.c"), std::string("a b.c.d"),
          std::string("a+b.c/d.e="), "bm90IGpzb24." + wide_payload + ".", valid + ".x", valid + " ",
          valid + std::string("\0x", 2), std::string(4096, '.'), std::string(100, '\xff')})
        EXPECT_EQ(failure_of(verify(token)), AuthFailure::malformed) << token;
}

TEST(VerifyToken, FailureNames) {
    EXPECT_STREQ(auth_failure_name(AuthFailure::missing), "missing");
    EXPECT_STREQ(auth_failure_name(AuthFailure::malformed), "malformed");
    EXPECT_STREQ(auth_failure_name(AuthFailure::wrong_algorithm), "wrong_algorithm");
    EXPECT_STREQ(auth_failure_name(AuthFailure::bad_signature), "bad_signature");
    EXPECT_STREQ(auth_failure_name(AuthFailure::expired), "expired");
    EXPECT_STREQ(auth_failure_name(AuthFailure::not_yet_valid), "not_yet_valid");
    EXPECT_STREQ(auth_failure_name(AuthFailure::wrong_audience), "wrong_audience");
    EXPECT_STREQ(auth_failure_name(AuthFailure::wrong_issuer), "wrong_issuer");
    EXPECT_STREQ(auth_failure_name(AuthFailure::no_subject), "no_subject");
    EXPECT_STREQ(auth_failure_name(AuthFailure::bad_claims), "bad_claims");
}

using OptionalView = std::optional<std::string_view>;
constexpr std::nullopt_t none = std::nullopt;

TEST(TokenFromRequest, BearerThenCookieThenQueryParameter) {
    EXPECT_EQ(token_from_request("Bearer header", "pgfeed_token=cookie", "param"), "header");
    EXPECT_EQ(token_from_request(none, "pgfeed_token=cookie", "param"), "cookie");
    EXPECT_EQ(token_from_request(none, none, "param"), "param");
    EXPECT_EQ(token_from_request(none, none, none), std::nullopt);
    EXPECT_EQ(token_from_request("", "", ""), std::nullopt);
}

TEST(TokenFromRequest, BearerScheme) {
    EXPECT_EQ(token_from_request("bearer abc", none, none), "abc");
    EXPECT_EQ(token_from_request("BEARER \t abc \t", none, none), "abc");
    EXPECT_EQ(token_from_request("  Bearer abc", none, none), "abc");
    // Another scheme, or no token, leaves the other sources to speak.
    EXPECT_EQ(token_from_request("Basic YWxpY2U6cHc=", "pgfeed_token=cookie", none), "cookie");
    EXPECT_EQ(token_from_request("Bearer", none, "param"), "param");
    EXPECT_EQ(token_from_request("Bearer   ", none, "param"), "param");
    EXPECT_EQ(token_from_request("Bearerabc", none, "param"), "param");
    EXPECT_EQ(token_from_request("Bearer", none, none), std::nullopt);
}

TEST(TokenFromRequest, CookieParsing) {
    auto from_cookie = [](std::string_view cookie) { return token_from_request(none, cookie, none); };
    EXPECT_EQ(from_cookie("pgfeed_token=t"), "t");
    EXPECT_EQ(from_cookie("a=b; pgfeed_token=t"), "t");
    EXPECT_EQ(from_cookie("a=b;pgfeed_token=t;c=d"), "t");
    EXPECT_EQ(from_cookie("  pgfeed_token = t  ; c=d"), "t");
    EXPECT_EQ(from_cookie("pgfeed_token=\"t\""), "t");
    EXPECT_EQ(from_cookie("pgfeed_token=a.b.c=="), "a.b.c==");
    EXPECT_EQ(from_cookie("xpgfeed_token=bad; pgfeed_token_x=bad; pgfeed_token=good"), "good");
    EXPECT_EQ(from_cookie("pgfeed_token=first; pgfeed_token=second"), "first");
    EXPECT_EQ(from_cookie("pgfeed_token=; pgfeed_token=second"), "second");
    EXPECT_EQ(from_cookie("garbage; ;; =x; pgfeed_token=t"), "t");
    EXPECT_EQ(from_cookie("PGFEED_TOKEN=t"), std::nullopt); // cookie names are case-sensitive
    EXPECT_EQ(from_cookie("a=pgfeed_token=t"), std::nullopt);
    EXPECT_EQ(from_cookie("pgfeed_token"), std::nullopt);
    EXPECT_EQ(from_cookie("pgfeed_token=\"\""), std::nullopt);
    EXPECT_EQ(from_cookie(";;;"), std::nullopt);
}

TEST(TokenFromRequest, ExtractedTokenVerifies) {
    std::string token = hs256(claims());
    std::string cookie = "theme=dark; pgfeed_token=" + token;
    std::optional<std::string> found = token_from_request("Basic x", OptionalView(cookie), none);
    ASSERT_TRUE(found);
    EXPECT_EQ(grant_of(verify(*found)).user, "alice");
}

TEST(TopicAllowed, MatchesWithFnmatchPatterns) {
    std::vector<std::string> patterns{"mp_id:7", "team:*"};
    EXPECT_TRUE(topic_allowed(patterns, "mp_id:7"));
    EXPECT_FALSE(topic_allowed(patterns, "mp_id:70"));
    EXPECT_FALSE(topic_allowed(patterns, "mp_id:8"));
    EXPECT_TRUE(topic_allowed(patterns, "team:red"));
    EXPECT_TRUE(topic_allowed(patterns, "team:a:b"));
    EXPECT_TRUE(topic_allowed(patterns, "team:[x]?"));
    EXPECT_FALSE(topic_allowed(patterns, "teams:red"));
    EXPECT_TRUE(topic_allowed({"*"}, "anything:at/all"));
    EXPECT_FALSE(topic_allowed({}, "mp_id:7"));
    EXPECT_FALSE(topic_allowed(patterns, std::string_view("mp_id:7\0x", 9)));
}

Grant granted(std::vector<std::string> topics) { return Grant{"alice", std::move(topics), now + 60}; }

std::vector<std::string> narrowed(const std::variant<std::vector<std::string>, std::string> &result) {
    if (auto *topics = std::get_if<std::vector<std::string>>(&result))
        return *topics;
    ADD_FAILURE() << "refused: " << std::get<std::string>(result);
    return {};
}

std::string refused(const std::variant<std::vector<std::string>, std::string> &result) {
    if (auto *topic = std::get_if<std::string>(&result))
        return *topic;
    ADD_FAILURE() << "allowed";
    return {};
}

TEST(NarrowTopics, EmptyRequestKeepsTheGrant) {
    EXPECT_EQ(narrowed(narrow_topics(granted({"mp_id:*"}), {})), (std::vector<std::string>{"mp_id:*"}));
}

TEST(NarrowTopics, NarrowerRequestsAreAllowed) {
    EXPECT_EQ(narrowed(narrow_topics(granted({"mp_id:*"}), {"mp_id:7", "mp_id:8"})),
              (std::vector<std::string>{"mp_id:7", "mp_id:8"}));
    EXPECT_EQ(narrowed(narrow_topics(granted({"mp_id:7"}), {"mp_id:7"})), (std::vector<std::string>{"mp_id:7"}));
    EXPECT_EQ(narrowed(narrow_topics(granted({"mp_id:*"}), {"mp_id:*"})), (std::vector<std::string>{"mp_id:*"}));
    EXPECT_EQ(narrowed(narrow_topics(granted({"*"}), {"mp_id:*", "team:3"})),
              (std::vector<std::string>{"mp_id:*", "team:3"}));
    EXPECT_EQ(narrowed(narrow_topics(granted({"m*"}), {"mp_id:*"})), (std::vector<std::string>{"mp_id:*"}));
}

TEST(NarrowTopics, EscalationIsRefused) {
    EXPECT_EQ(refused(narrow_topics(granted({"mp_id:7"}), {"mp_id:*"})), "mp_id:*");
    EXPECT_EQ(refused(narrow_topics(granted({"mp_id:7"}), {"mp_id:7*"})), "mp_id:7*");
    EXPECT_EQ(refused(narrow_topics(granted({"mp_id:7"}), {"mp_id:8"})), "mp_id:8");
    EXPECT_EQ(refused(narrow_topics(granted({"mp_id:*"}), {"*"})), "*");
    EXPECT_EQ(refused(narrow_topics(granted({"mp_id:*"}), {"mp*"})), "mp*");
    EXPECT_EQ(refused(narrow_topics(granted({"mp_id:*"}), {"team:1"})), "team:1");
    EXPECT_EQ(refused(narrow_topics(granted({}), {"mp_id:7"})), "mp_id:7");
    // Other fnmatch syntax would widen a literal-looking request; it is refused outright.
    EXPECT_EQ(refused(narrow_topics(granted({"mp_id:*"}), {"mp_id:?"})), "mp_id:?");
    EXPECT_EQ(refused(narrow_topics(granted({"*"}), {"mp_id:[0-9]"})), "mp_id:[0-9]");
    EXPECT_EQ(refused(narrow_topics(granted({"*"}), {""})), "");
    EXPECT_EQ(refused(narrow_topics(granted({"*"}), {std::string("a\0b", 3)})), std::string("a\0b", 3));
    EXPECT_EQ(refused(narrow_topics(granted({"mp_id:*"}), {"mp_id:1", "team:2", "team:3"})), "team:2");
}

} // namespace
} // namespace pgfeed::notifier
