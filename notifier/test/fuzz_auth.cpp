// libFuzzer target for notifier/auth.hpp: arbitrary request headers, tokens, claims and ?topics=
// must be refused cleanly, never crash, leak or hit undefined behaviour. Not part of the unit tests:
//
//   clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Inotifier notifier/auth.cpp \
//       notifier/test/fuzz_auth.cpp $(pkg-config --cflags --libs libjwt libcjson) -o /tmp/fuzz_auth
//   /tmp/fuzz_auth -max_total_time=60
//
// Random bytes never carry a valid signature, so part of the input is signed here as the claims
// of a token: that drives the claim checks, which forged tokens never reach.
#include "auth.hpp"

#include <fuzzer/FuzzedDataProvider.h>
#include <jwt.h>

#include <cstdlib>
#include <string>

namespace {

using namespace pgfeed::notifier;

const std::string secret = "fuzzing-secret";
const AuthKeys keys{{"", "rotated-out", secret}, "", ""};
constexpr int64_t now = 1'700'000'000;

std::optional<std::string> maybe_string(FuzzedDataProvider &input) {
    if (!input.ConsumeBool())
        return std::nullopt;
    return input.ConsumeRandomLengthString(max_token_bytes + 64);
}

std::optional<std::string_view> view(const std::optional<std::string> &text) {
    if (!text)
        return std::nullopt;
    return std::string_view(*text);
}

// The claims signed with the fuzzer's secret, or nothing if libjwt will not take them as JSON.
std::optional<std::string> signed_claims(const std::string &claims_json) {
    jwt_t *jwt = nullptr;
    if (jwt_new(&jwt) != 0)
        return std::nullopt;
    std::optional<std::string> token;
    if (jwt_add_grants_json(jwt, claims_json.c_str()) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char *>(secret.data()),
                    static_cast<int>(secret.size())) == 0) {
        if (char *encoded = jwt_encode_str(jwt)) {
            token = encoded;
            std::free(encoded);
        }
    }
    jwt_free(jwt);
    return token;
}

// A grant as verify_token makes them: its topics are valid patterns.
Grant fuzzed_grant(FuzzedDataProvider &input) {
    Grant grant{"fuzz", {}, now};
    for (int count = input.ConsumeIntegralInRange(0, 4); count > 0; --count)
        if (std::string topic = input.ConsumeRandomLengthString(300); valid_topic_pattern(topic))
            grant.topics.push_back(topic);
    return grant;
}

void check_topics(const Grant &grant, FuzzedDataProvider &input) {
    std::vector<std::string> requested;
    for (int count = input.ConsumeIntegralInRange(0, 8); count > 0; --count)
        requested.push_back(input.ConsumeRandomLengthString(300));
    auto narrowed = narrow_topics(grant, requested);
    if (auto *topics = std::get_if<std::vector<std::string>>(&narrowed))
        for (const std::string &topic : *topics)
            if (!topic_allowed(grant.topics, topic))
                std::abort(); // a narrowed topic must stay inside the grant
    topic_allowed(grant.topics, input.ConsumeRandomLengthString(300));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzedDataProvider input(data, size);
    int64_t leeway = input.ConsumeIntegral<int64_t>();

    std::optional<std::string> authorization = maybe_string(input);
    std::optional<std::string> cookie = maybe_string(input);
    std::optional<std::string> access_token = maybe_string(input);
    std::optional<std::string> token = token_from_request(view(authorization), view(cookie), view(access_token));
    verify_token(token ? *token : std::string(), keys, now, leeway);

    std::optional<std::string> claims = signed_claims(input.ConsumeRandomLengthString(max_token_bytes));
    auto result = verify_token(claims ? *claims : input.ConsumeRemainingBytesAsString(), keys, now, leeway);
    if (auto *grant = std::get_if<Grant>(&result))
        check_topics(*grant, input);
    else
        check_topics(fuzzed_grant(input), input);
    return 0;
}
