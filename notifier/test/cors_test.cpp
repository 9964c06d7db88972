// Unit tests of the CORS origin allowlist (notifier/cors.hpp).
#include "cors.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace pgfeed::notifier {
namespace {

using Origins = std::vector<std::string>;

// The exception's message, or "" (and a failure) when the list was accepted.
std::string refused(std::string_view list) {
    try {
        Origins origins = parse_cors_origins(list);
        ADD_FAILURE() << "accepted " << list;
    } catch (const std::invalid_argument &e) {
        return e.what();
    }
    return "";
}

TEST(CorsOrigins, AnEmptyListAllowsNothing) {
    EXPECT_TRUE(parse_cors_origins("").empty());
    EXPECT_TRUE(parse_cors_origins("  \t").empty());
    EXPECT_FALSE(origin_allowed({}, "http://localhost:3000"));
}

TEST(CorsOrigins, ParsesAList) {
    EXPECT_EQ(parse_cors_origins("http://localhost:3000"), Origins{"http://localhost:3000"});
    EXPECT_EQ(parse_cors_origins("https://app.example.com, http://localhost:3000 ,http://127.0.0.1:8081"),
              (Origins{"https://app.example.com", "http://localhost:3000", "http://127.0.0.1:8081"}));
    EXPECT_EQ(parse_cors_origins("http://[::1]:3000,https://[2001:DB8::1]"),
              (Origins{"http://[::1]:3000", "https://[2001:db8::1]"}));
    EXPECT_EQ(parse_cors_origins("http://my_app:8080,https://xn--caf-dma.example"),
              (Origins{"http://my_app:8080", "https://xn--caf-dma.example"}));
}

TEST(CorsOrigins, Normalizes) {
    EXPECT_EQ(parse_cors_origins("HTTPS://App.Example.COM"), Origins{"https://app.example.com"});
    EXPECT_EQ(parse_cors_origins("http://a.example:80,https://b.example:443"),
              (Origins{"http://a.example", "https://b.example"}));
    // Only the scheme's own default port is dropped.
    EXPECT_EQ(parse_cors_origins("http://a.example:443,https://b.example:80"),
              (Origins{"http://a.example:443", "https://b.example:80"}));
    EXPECT_EQ(parse_cors_origins("http://a.example:65535"), Origins{"http://a.example:65535"});
}

TEST(CorsOrigins, RefusesWildcards) {
    EXPECT_NE(refused("*").find("\"*\" has a `*`"), std::string::npos) << refused("*");
    EXPECT_NE(refused("https://*.example.com").find("has a `*`"), std::string::npos);
    EXPECT_NE(refused("http://localhost:3000,*").find("\"*\""), std::string::npos);
}

TEST(CorsOrigins, RefusesPaths) {
    for (std::string_view entry : {"http://localhost:3000/", "https://app.example.com/path", "http://a.example?x=1",
                                   "http://a.example#top", "http://a.example:3000/"})
        EXPECT_NE(refused(entry).find("has a path, query or fragment"), std::string::npos) << entry;
}

TEST(CorsOrigins, RefusesOtherSchemes) {
    for (std::string_view entry : {"ftp://a.example", "ws://a.example", "file://a", "chrome-extension://abc",
                                   "://a.example", "httpx://a.example"})
        EXPECT_NE(refused(entry).find("has a scheme other than http or https"), std::string::npos) << entry;
    for (std::string_view entry : {"localhost:3000", "a.example", "http:/a.example", "http:a.example"})
        EXPECT_NE(refused(entry).find("is not scheme://host[:port]"), std::string::npos) << entry;
}

TEST(CorsOrigins, RefusesBadHostsAndPorts) {
    for (std::string_view entry :
         {"http://", "http://:3000", "http://a..example", "http://.a.example", "http://a.example.", "http://a example",
          "http://caf\xC3\xA9.example", "http://a%2Eexample"})
        EXPECT_NE(refused(entry).find("has a malformed host"), std::string::npos) << entry;
    for (std::string_view entry :
         {"http://a.example:0", "http://a.example:65536", "http://a.example:03000", "http://a.example:x",
          "http://a.example:-1", "http://a.example:1:2", "http://a.example:123456"})
        EXPECT_NE(refused(entry).find("has a port"), std::string::npos) << entry;
    EXPECT_NE(refused("http://a.example:").find("has an empty port"), std::string::npos);
    EXPECT_NE(refused("http://[::1]:").find("has an empty port"), std::string::npos);
    EXPECT_NE(refused("http://[::1").find("malformed IPv6"), std::string::npos);
    EXPECT_NE(refused("http://[]").find("malformed IPv6"), std::string::npos);
    EXPECT_NE(refused("http://[zz::1]").find("malformed IPv6"), std::string::npos);
    EXPECT_NE(refused("http://[::1]x").find("text after the IPv6 address"), std::string::npos);
    EXPECT_NE(refused("http://user@a.example").find("has user information"), std::string::npos);
}

TEST(CorsOrigins, RefusesNullAndEmptyEntries) {
    EXPECT_NE(refused("null").find("\"null\""), std::string::npos);
    for (std::string_view list : {",", "http://a.example,", ",http://a.example", "http://a.example,,http://b.example",
                                  "http://a.example, ,http://b.example"})
        EXPECT_EQ(refused(list), "cors_origins has an empty entry (separate origins with single commas)") << list;
}

TEST(CorsOrigins, TheMessageNamesTheEntry) {
    EXPECT_EQ(refused("http://localhost:3000, http://localhost:3001/"),
              "cors_origins: \"http://localhost:3001/\" has a path, query or fragment (an origin has not even a "
              "trailing slash); an origin is scheme://host[:port], e.g. https://app.example.com");
    std::string long_entry = "http://" + std::string(2000, 'a');
    std::string message = refused(long_entry);
    EXPECT_NE(message.find("...\" is too long"), std::string::npos) << message;
    EXPECT_LT(message.size(), 300u);
    EXPECT_NE(refused("http://a\x01.example").find("\"http://a?.example\""), std::string::npos);
}

TEST(CorsOrigins, AllowsListedOrigins) {
    Origins allowlist = parse_cors_origins("http://localhost:3000,https://app.example.com,http://[::1]:8080");
    EXPECT_TRUE(origin_allowed(allowlist, "http://localhost:3000"));
    EXPECT_TRUE(origin_allowed(allowlist, "https://app.example.com"));
    EXPECT_TRUE(origin_allowed(allowlist, "http://[::1]:8080"));
    // Scheme and host compare case-insensitively; a default port is the same as none.
    EXPECT_TRUE(origin_allowed(allowlist, "HTTP://LocalHost:3000"));
    EXPECT_TRUE(origin_allowed(allowlist, "https://APP.example.com:443"));
}

TEST(CorsOrigins, RefusesOtherOrigins) {
    Origins allowlist = parse_cors_origins("http://localhost:3000,https://app.example.com");
    for (std::string_view origin : {
             "http://localhost:3001",         // another port
             "http://localhost",              // no port
             "https://localhost:3000",        // another scheme
             "http://app.example.com",        // another scheme
             "https://evil.app.example.com",  // a subdomain
             "https://app.example.com.evil",  // a suffix
             "https://app.example.co",        // a prefix
             "https://app.example.com/",      // not an origin
             "https://app.example.com:443/x", // not an origin
             "https://user@app.example.com",  // not an origin
             "null",                          // opaque
             "",                              // empty
             "*",                             // never
             " http://localhost:3000",        // not trimmed: evhttp already strips header whitespace
             "http://localhost:3000\r\n",     //
             "http://localhost:03000",        // not a browser's serialization
         })
        EXPECT_FALSE(origin_allowed(allowlist, origin)) << origin;
}

TEST(CorsOrigins, NullIsNeverAllowed) {
    // Even a hand-made allowlist holding "null" does not let it in.
    EXPECT_FALSE(origin_allowed({"null"}, "null"));
    EXPECT_FALSE(origin_allowed({"*"}, "http://localhost:3000"));
}

} // namespace
} // namespace pgfeed::notifier
