#include "trusted_proxies.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <stdexcept>
#include <string>

namespace pgfeed::notifier {
namespace {

IpAddress ip(const char *text) {
    auto parsed = parse_ip_address(text);
    EXPECT_TRUE(parsed) << text;
    return parsed.value_or(IpAddress{});
}

// The key of the client `peer` names with `forwarded_for`, given the trusted `list`.
std::string client(const char *list, const char *peer, const char *forwarded_for) {
    return address_key(TrustedProxies::parse(list).client_of(ip(peer), forwarded_for));
}

std::string refusal(const char *list) {
    try {
        TrustedProxies::parse(list);
    } catch (const std::invalid_argument &error) {
        return error.what();
    }
    return "";
}

TEST(ParseIpAddress, TakesBothFamiliesAndBracketedIPv6) {
    EXPECT_EQ(address_key(ip("203.0.113.7")), "203.0.113.7");
    EXPECT_EQ(address_key(ip("2001:db8:1:2::5")), "2001:db8:1:2::/64");
    EXPECT_EQ(address_key(ip("[2001:db8:1:2::5]")), "2001:db8:1:2::/64");
    EXPECT_EQ(address_key(ip("::ffff:198.51.100.1")), "198.51.100.1"); // IPv4-mapped is the IPv4 address
}

TEST(ParseIpAddress, RefusesAnythingElse) {
    for (const char *bad :
         {"", " 1.2.3.4", "1.2.3.4 ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4:80", "[1.2.3.4]", "[::1", "::1]",
          "[::1]:80", "unknown", "_hidden", "2001:db8::1::2", "localhost", "1.2.3.4/32", "01.02.03.04x"})
        EXPECT_FALSE(parse_ip_address(bad)) << bad;
    const std::string longer_than_any(200, '1');
    EXPECT_FALSE(parse_ip_address(longer_than_any));
}

TEST(IpAddressOf, ReadsSocketAddresses) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.9", &v4.sin_addr);
    EXPECT_EQ(address_key(*ip_address_of(reinterpret_cast<sockaddr *>(&v4))), "192.0.2.9");
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::9", &v6.sin6_addr);
    EXPECT_EQ(address_key(*ip_address_of(reinterpret_cast<sockaddr *>(&v6))), "2001:db8::/64");
    sockaddr_un local{};
    local.sun_family = AF_UNIX;
    EXPECT_FALSE(ip_address_of(reinterpret_cast<sockaddr *>(&local)));
}

TEST(TrustedProxies, MatchesAddressesAndNetworksOfBothFamilies) {
    auto trusted = TrustedProxies::parse(" 127.0.0.1 , 10.0.0.0/8,192.168.4.0/22, ::1, fd00::/8, 2001:db8::/127");
    for (const char *yes : {"127.0.0.1", "::ffff:127.0.0.1", "10.0.0.1", "10.255.255.255", "192.168.4.0",
                            "192.168.7.255", "::1", "fd12:3456::1", "2001:db8::", "2001:db8::1"})
        EXPECT_TRUE(trusted.trusts(ip(yes))) << yes;
    for (const char *no : {"127.0.0.2", "11.0.0.1", "9.255.255.255", "192.168.8.0", "192.168.3.255", "::2", "fe00::1",
                           "2001:db8::2", "::a00:1" /* 10.0.0.1's bits, but an IPv6 address */})
        EXPECT_FALSE(trusted.trusts(ip(no))) << no;
}

TEST(TrustedProxies, ZeroPrefixesTrustAWholeFamily) {
    auto v4 = TrustedProxies::parse("0.0.0.0/0");
    EXPECT_TRUE(v4.trusts(ip("203.0.113.1")));
    EXPECT_FALSE(v4.trusts(ip("2001:db8::1")));
    auto v6 = TrustedProxies::parse("::/0");
    EXPECT_TRUE(v6.trusts(ip("2001:db8::1")));
}

TEST(TrustedProxies, EmptyTrustsNobody) {
    for (const char *empty : {"", "  "}) {
        auto nobody = TrustedProxies::parse(empty);
        EXPECT_FALSE(nobody.trusts(ip("127.0.0.1")));
        EXPECT_EQ(address_key(nobody.client_of(ip("127.0.0.1"), "198.51.100.1")), "127.0.0.1");
    }
}

TEST(TrustedProxies, RefusesBadEntriesByName) {
    EXPECT_NE(refusal("10.0.0.0/8, nginx").find("\"nginx\" is not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(refusal("10.0.0.0/33").find("\"10.0.0.0/33\" has a prefix length that is not 0..32"), std::string::npos);
    EXPECT_NE(refusal("fd00::/129").find("not 0..128"), std::string::npos);
    EXPECT_NE(refusal("10.0.0.1/8").find("\"10.0.0.1/8\" has address bits set past its /8"), std::string::npos);
    EXPECT_NE(refusal("fd00::1/8").find("bits set past its /8"), std::string::npos);
    for (const char *bad : {"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.0/ 8", "1.2.3.4,", ",1.2.3.4",
                            "1.2.3.4,,::1", "[::1]", "1.2.3.4:80", "*"})
        EXPECT_NE(refusal(bad), "") << bad;
}

TEST(ClientOf, AnUntrustedPeerIsTheClientWhateverItSays) {
    EXPECT_EQ(client("10.0.0.0/8", "203.0.113.9", "198.51.100.1"), "203.0.113.9");
    EXPECT_EQ(client("10.0.0.0/8", "203.0.113.9", "10.0.0.1"), "203.0.113.9");
}

TEST(ClientOf, ATrustedPeerNamesTheRightmostUntrustedEntry) {
    const char *proxies = "127.0.0.1, 10.0.0.0/8";
    EXPECT_EQ(client(proxies, "127.0.0.1", "198.51.100.1"), "198.51.100.1");
    // The client forged the first entry; the proxies appended what they saw.
    EXPECT_EQ(client(proxies, "127.0.0.1", "192.0.2.66, 198.51.100.1, 10.1.2.3"), "198.51.100.1");
    EXPECT_EQ(client(proxies, "127.0.0.1", "  198.51.100.1\t,10.1.2.3 "), "198.51.100.1");
    EXPECT_EQ(client(proxies, "127.0.0.1", "2001:db8:5:6::1, 10.1.2.3"), "2001:db8:5:6::/64");
    EXPECT_EQ(client(proxies, "127.0.0.1", "[2001:db8:5:6::1]"), "2001:db8:5:6::/64");
    EXPECT_EQ(client("::1", "::1", "198.51.100.1"), "198.51.100.1");
}

TEST(ClientOf, AllTrustedNamesTheLeftmost) {
    EXPECT_EQ(client("10.0.0.0/8", "10.0.0.1", "10.9.9.9, 10.0.0.2"), "10.9.9.9");
}

TEST(ClientOf, WithoutAHeaderOrWithAMalformedOneThePeerIsTheClient) {
    const char *proxies = "127.0.0.1, 10.0.0.0/8";
    for (const char *malformed :
         {"", " ", "unknown", "198.51.100.1, garbage", "198.51.100.1,", "198.51.100.1:4711", "198.51.100.1 10.1.2.3",
          "\"198.51.100.1\"", "for=198.51.100.1", "198.51.100.1;10.1.2.3"})
        EXPECT_EQ(client(proxies, "127.0.0.1", malformed), "127.0.0.1") << malformed;
    // Left of the first untrusted entry nothing is read: garbage there names nobody new.
    EXPECT_EQ(client(proxies, "127.0.0.1", "garbage, 198.51.100.1"), "198.51.100.1");
    EXPECT_EQ(client(proxies, "127.0.0.1", ",198.51.100.1"), "198.51.100.1");
}

TEST(ClientOf, AHugeHeaderIsWalkedWithoutTrouble) {
    std::string many;
    for (int i = 0; i < 10000; ++i)
        many += "10.0.0." + std::to_string(i % 256) + ", ";
    many += "10.0.0.1";
    EXPECT_EQ(client("10.0.0.0/8", "10.0.0.1", many.c_str()), "10.0.0.0");
    EXPECT_EQ(client("10.0.0.0/8", "10.0.0.1", ("198.51.100.1, " + many).c_str()), "198.51.100.1");
}

} // namespace
} // namespace pgfeed::notifier
