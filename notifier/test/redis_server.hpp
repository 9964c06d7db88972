// A throwaway redis-server child process on a free loopback port, for the integration tests.
#pragma once

#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace pgfeed::notifier {

inline const char *const kRedisServer = "/usr/bin/redis-server";

inline int free_loopback_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

// A redis-server child process on a loopback port, with no persistence.
class RedisServer {
  public:
    explicit RedisServer(int port) : port_(port) {}
    ~RedisServer() { kill(); }

    void start(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {kRedisServer, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                         "--save",     "",       "--appendonly",        "no",     "--daemonize",
                                         "no"};
        args.insert(args.end(), extra.begin(), extra.end());
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); // no stray server when the test process dies
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, STDOUT_FILENO);
            std::vector<char *> argv;
            for (std::string &arg : args)
                argv.push_back(arg.data());
            argv.push_back(nullptr);
            execv(kRedisServer, argv.data());
            _exit(127);
        }
    }

    void kill() {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

  private:
    int port_;
    pid_t pid_ = -1;
};

} // namespace pgfeed::notifier
