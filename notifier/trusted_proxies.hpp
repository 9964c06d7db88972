// Who the client of a request is when reverse proxies stand in front (http.trusted_proxies): the
// peers listed there may name the client in X-Forwarded-For, nobody else may. The client is the
// rightmost X-Forwarded-For entry that is not a trusted proxy (each proxy appends the address it
// got the request from, so entries to the left of an untrusted one are the client's own words), or
// the leftmost when all are trusted; the peer itself when it is not trusted, when it sent no
// X-Forwarded-For, or when an entry is not an address (a malformed header names nobody).
//
// Addresses are kept as IPv6, IPv4 ones mapped (::ffff:a.b.c.d), so one comparison serves both.
#pragma once

#include <netinet/in.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace pgfeed::notifier {

struct IpAddress {
    in6_addr bytes{};
};

// An address as text: IPv4 dotted quad, IPv6 (inet_pton's forms), or IPv6 in brackets. Blanks
// around it are not allowed here (the caller trims).
std::optional<IpAddress> parse_ip_address(std::string_view text);
// The address of an AF_INET or AF_INET6 socket address; nullopt for any other family.
std::optional<IpAddress> ip_address_of(const sockaddr *address);

// The key a client's connections and new-connection tokens are counted under: an IPv4 address as
// text, an IPv6 address as its /64 ("2001:db8:1:2::/64": one host usually owns the whole /64).
std::string address_key(const IpAddress &address);

class TrustedProxies {
  public:
    // Nobody is trusted: X-Forwarded-For is never believed.
    TrustedProxies() = default;
    // Comma-separated addresses and networks ("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8"); blanks
    // around entries are ignored, empty means nobody. Throws std::invalid_argument naming the first
    // entry that is not an address, has a prefix out of range, or has bits set past its prefix.
    static TrustedProxies parse(std::string_view list);

    bool trusts(const IpAddress &address) const;
    // The client of a request `peer` sent with `forwarded_for`: every X-Forwarded-For header of the
    // request joined by commas, in order (empty: none).
    IpAddress client_of(const IpAddress &peer, std::string_view forwarded_for) const;

  private:
    struct Network {
        IpAddress base;
        int prefix; // of the 128 bits
    };
    std::vector<Network> networks_;
};

} // namespace pgfeed::notifier
