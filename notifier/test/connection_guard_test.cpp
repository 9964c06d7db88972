// Unit tests of the key connections are counted under per client address
// (notifier/connection_guard.hpp); the guard itself is exercised against a running gateway in
// test/notifier/sse_gateway.py (connection limits, request deadlines, the file limit).
#include "connection_guard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <gtest/gtest.h>

namespace pgfeed::notifier {
namespace {

std::string key_of_ipv4(const char *text) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, text, &address.sin_addr), 1) << text;
    return address_key(reinterpret_cast<sockaddr *>(&address));
}

std::string key_of_ipv6(const char *text) {
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, text, &address.sin6_addr), 1) << text;
    return address_key(reinterpret_cast<sockaddr *>(&address));
}

TEST(AddressKey, IPv4IsTheAddress) {
    EXPECT_EQ(key_of_ipv4("127.0.0.1"), "127.0.0.1");
    EXPECT_EQ(key_of_ipv4("203.0.113.200"), "203.0.113.200");
}

TEST(AddressKey, IPv6IsItsSlash64) {
    EXPECT_EQ(key_of_ipv6("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
    EXPECT_EQ(key_of_ipv6("2001:db8:1:2::1"), key_of_ipv6("2001:db8:1:2:ffff::9"));
    EXPECT_NE(key_of_ipv6("2001:db8:1:2::1"), key_of_ipv6("2001:db8:1:3::1"));
    EXPECT_EQ(key_of_ipv6("::1"), "::/64");
}

TEST(AddressKey, MappedIPv4IsTheIPv4Address) {
    EXPECT_EQ(key_of_ipv6("::ffff:198.51.100.7"), "198.51.100.7");
    EXPECT_EQ(key_of_ipv6("::ffff:198.51.100.7"), key_of_ipv4("198.51.100.7"));
}

TEST(AddressKey, OtherFamiliesShareOneKey) {
    sockaddr_un local{};
    local.sun_family = AF_UNIX;
    EXPECT_EQ(address_key(reinterpret_cast<sockaddr *>(&local)), "");
}

} // namespace
} // namespace pgfeed::notifier
