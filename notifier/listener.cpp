#include "listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace pgfeed::notifier {

namespace {

// Room for connection bursts: the kernel caps it at net.core.somaxconn.
constexpr int kBacklog = 4096;

[[noreturn]] void fail(int error, const std::string &what) {
    throw std::system_error(error, std::generic_category(), what);
}

} // namespace

int open_reuseport_socket(const std::string &address, int port, bool listen) {
    const std::string where = address + " port " + std::to_string(port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo *found = nullptr;
    if (int error = getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &found); error != 0)
        throw std::system_error(EINVAL, std::generic_category(), where + ": " + gai_strerror(error));
    const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int error = errno;
        freeaddrinfo(found);
        fail(error, "socket for " + where);
    }
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    int status = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    if (status == 0)
        status = bind(fd, found->ai_addr, found->ai_addrlen);
    if (status == 0 && listen)
        status = ::listen(fd, kBacklog);
    const int error = errno;
    freeaddrinfo(found);
    if (status != 0) {
        close(fd);
        fail(error, "cannot listen on " + where);
    }
    return fd;
}

int bound_port(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length) != 0)
        fail(errno, "getsockname");
    if (address.ss_family == AF_INET6)
        return ntohs(reinterpret_cast<sockaddr_in6 *>(&address)->sin6_port);
    return ntohs(reinterpret_cast<sockaddr_in *>(&address)->sin_port);
}

} // namespace pgfeed::notifier
