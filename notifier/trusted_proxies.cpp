#include "trusted_proxies.hpp"

#include "text.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace pgfeed::notifier {

namespace {

// inet_pton wants a terminated string; an address is at most INET6_ADDRSTRLEN - 1 characters.
std::optional<IpAddress> parse_plain(std::string_view text) {
    char buffer[INET6_ADDRSTRLEN];
    if (text.empty() || text.size() >= sizeof buffer)
        return std::nullopt;
    text.copy(buffer, text.size());
    buffer[text.size()] = '\0';
    IpAddress address;
    in_addr v4{};
    if (inet_pton(AF_INET, buffer, &v4) == 1) {
        address.bytes.s6_addr[10] = 0xff;
        address.bytes.s6_addr[11] = 0xff;
        std::memcpy(address.bytes.s6_addr + 12, &v4, 4);
        return address;
    }
    if (inet_pton(AF_INET6, buffer, &address.bytes) == 1)
        return address;
    return std::nullopt;
}

bool is_v4(const IpAddress &address) { return IN6_IS_ADDR_V4MAPPED(&address.bytes); }

// Whether the first `prefix` bits of a and b are equal.
bool same_prefix(const IpAddress &a, const IpAddress &b, int prefix) {
    const int whole = prefix / 8, rest = prefix % 8;
    if (std::memcmp(a.bytes.s6_addr, b.bytes.s6_addr, static_cast<std::size_t>(whole)) != 0)
        return false;
    if (rest == 0)
        return true;
    const unsigned mask = 0xffu << (8 - rest) & 0xffu;
    return (a.bytes.s6_addr[whole] & mask) == (b.bytes.s6_addr[whole] & mask);
}

bool has_bits_past(const IpAddress &address, int prefix) {
    for (int bit = prefix; bit < 128; ++bit)
        if (address.bytes.s6_addr[bit / 8] & (0x80u >> (bit % 8)))
            return true;
    return false;
}

} // namespace

std::optional<IpAddress> parse_ip_address(std::string_view text) {
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
        auto inner = parse_plain(text.substr(1, text.size() - 2));
        return inner && !is_v4(*inner) ? inner : std::nullopt;
    }
    return parse_plain(text);
}

std::optional<IpAddress> ip_address_of(const sockaddr *address) {
    IpAddress ip;
    if (address->sa_family == AF_INET6) {
        ip.bytes = reinterpret_cast<const sockaddr_in6 *>(address)->sin6_addr;
        return ip;
    }
    if (address->sa_family != AF_INET)
        return std::nullopt;
    ip.bytes.s6_addr[10] = 0xff;
    ip.bytes.s6_addr[11] = 0xff;
    std::memcpy(ip.bytes.s6_addr + 12, &reinterpret_cast<const sockaddr_in *>(address)->sin_addr, 4);
    return ip;
}

std::string address_key(const IpAddress &address) {
    char text[INET6_ADDRSTRLEN] = "";
    if (is_v4(address)) {
        inet_ntop(AF_INET, address.bytes.s6_addr + 12, text, sizeof text);
        return text;
    }
    in6_addr network = address.bytes;
    std::memset(network.s6_addr + 8, 0, 8);
    inet_ntop(AF_INET6, &network, text, sizeof text);
    return std::string(text) + "/64";
}

TrustedProxies TrustedProxies::parse(std::string_view list) {
    TrustedProxies trusted;
    if (trim_blanks(list).empty())
        return trusted;
    for (std::string_view part : split_commas(list)) {
        const std::string_view entry = trim_blanks(part);
        const std::string shown = quoted_prefix(entry, 64);
        const std::size_t slash = entry.find('/');
        const auto address = parse_plain(entry.substr(0, slash));
        if (!address)
            throw std::invalid_argument(shown + " is not an IPv4 or IPv6 address or network");
        const int bits = is_v4(*address) ? 32 : 128;
        int prefix = bits;
        if (slash != std::string_view::npos) {
            const std::string_view digits = entry.substr(slash + 1);
            auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
            if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || prefix < 0 ||
                prefix > bits)
                throw std::invalid_argument(shown + " has a prefix length that is not 0.." + std::to_string(bits));
        }
        const int prefix128 = prefix + (128 - bits);
        if (has_bits_past(*address, prefix128))
            throw std::invalid_argument(shown + " has address bits set past its /" + std::to_string(prefix) +
                                        " (write the network's first address)");
        trusted.networks_.push_back(Network{*address, prefix128});
    }
    return trusted;
}

bool TrustedProxies::trusts(const IpAddress &address) const {
    for (const Network &network : networks_)
        if (same_prefix(network.base, address, network.prefix))
            return true;
    return false;
}

IpAddress TrustedProxies::client_of(const IpAddress &peer, std::string_view forwarded_for) const {
    if (!trusts(peer) || trim_blanks(forwarded_for).empty())
        return peer;
    const std::vector<std::string_view> entries = split_commas(forwarded_for);
    std::optional<IpAddress> client;
    for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) {
        client = parse_ip_address(trim_blanks(*entry));
        if (!client)
            return peer;
        if (!trusts(*client))
            return *client;
    }
    return *client;
}

} // namespace pgfeed::notifier
