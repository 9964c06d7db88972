// Unit tests of the request framing check (notifier/http_framing.hpp).
#include "http_framing.hpp"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>

#include <gtest/gtest.h>

#include <initializer_list>
#include <utility>

namespace pgfeed::notifier {
namespace {

using Headers = std::initializer_list<std::pair<const char *, const char *>>;

// ambiguous_framing over headers as evhttp would hold them.
std::optional<std::string> check(Headers given) {
    evkeyvalq headers;
    TAILQ_INIT(&headers);
    for (const auto &[name, value] : given)
        evhttp_add_header(&headers, name, value);
    auto problem = ambiguous_framing(&headers);
    evhttp_clear_headers(&headers);
    return problem;
}

TEST(HttpFraming, AcceptsOneWayOfFramingTheBody) {
    EXPECT_FALSE(check({}));
    EXPECT_FALSE(check({{"Host", "x"}, {"Content-Length", "12"}}));
    EXPECT_FALSE(check({{"content-length", "0"}}));
    EXPECT_FALSE(check({{"Transfer-Encoding", "chunked"}}));
    EXPECT_FALSE(check({{"transfer-encoding", " Chunked "}}));
}

TEST(HttpFraming, RefusesSeveralContentLengths) {
    EXPECT_TRUE(check({{"Content-Length", "3"}, {"Content-Length", "40"}}));
    EXPECT_TRUE(check({{"Content-Length", "3"}, {"content-length", "3"}})); // repeats refused too
    EXPECT_TRUE(check({{"Content-Length", "3, 3"}}));
    EXPECT_TRUE(check({{"Content-Length", "3,40"}}));
}

TEST(HttpFraming, RefusesContentLengthWithTransferEncoding) {
    EXPECT_TRUE(check({{"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}}));
    EXPECT_TRUE(check({{"Transfer-Encoding", "chunked"}, {"Content-Length", "3"}}));
}

TEST(HttpFraming, RefusesCodingsEvhttpWouldNotDecode) {
    EXPECT_TRUE(check({{"Transfer-Encoding", "gzip, chunked"}}));
    EXPECT_TRUE(check({{"Transfer-Encoding", "chunked, identity"}}));
    EXPECT_TRUE(check({{"Transfer-Encoding", "identity"}}));
    EXPECT_TRUE(check({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}));
    EXPECT_TRUE(check({{"Transfer-Encoding", ""}}));
}

} // namespace
} // namespace pgfeed::notifier
