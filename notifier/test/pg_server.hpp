// A throwaway PostgreSQL 15 listening on a unix socket in a temporary directory (settings as in
// test/pg_cluster.sh), for the integration tests against a real server.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>

namespace pgfeed::notifier {

inline const std::string kPgBin = "/usr/lib/postgresql/15/bin";

inline bool run_shell(const std::string &command) { return std::system(command.c_str()) == 0; }

// initdb and pg_ctl refuse to run as root: then they run as the postgres system user.
inline std::string as_cluster_owner(const std::string &command) {
    return geteuid() == 0 ? "runuser -u postgres -- " + command : command;
}

// A directory /tmp/<prefix>.XXXXXX that the cluster owner can use. Empty on failure.
inline std::string make_cluster_dir(const std::string &prefix) {
    std::string dir = "/tmp/" + prefix + ".XXXXXX";
    if (!mkdtemp(dir.data()))
        return "";
    if (geteuid() == 0 && (chmod(dir.c_str(), 0755) != 0 || !run_shell("chown postgres: " + dir)))
        return "";
    return dir;
}

inline std::string directory_of_this_binary() {
    char path[4096];
    ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
    if (length <= 0)
        return ".";
    std::string exe(path, static_cast<std::size_t>(length));
    return exe.substr(0, exe.rfind('/'));
}

// CTest runs every test in a process of its own, and initdb takes over a second while copying its
// result takes a tenth: the first process keeps an initdb'd data directory beside the test binary
// for the others (under a lock, so parallel runs build it once). Empty on success, else the reason.
inline std::string prepare_pg_template(const std::string &template_dir) {
    int lock = open((template_dir + ".lock").c_str(), O_CREAT | O_RDWR, 0644);
    if (lock < 0 || flock(lock, LOCK_EX) != 0)
        return "cannot lock " + template_dir + ".lock";
    std::string error;
    if (access((template_dir + "/PG_VERSION").c_str(), F_OK) != 0) {
        std::string scratch = make_cluster_dir("pg_test_initdb");
        if (scratch.empty())
            error = "cannot make a directory for initdb in /tmp";
        else if (!run_shell(as_cluster_owner(kPgBin + "/initdb -D " + scratch +
                                             "/data -U postgres -A trust --no-sync >" + scratch + "/initdb.log 2>&1")))
            error = "initdb failed, see " + scratch + "/initdb.log";
        // Copied under another name and renamed: a half-made template is never used.
        else if (!run_shell("rm -rf " + template_dir + ".partial && cp -a " + scratch + "/data " + template_dir +
                            ".partial && mv " + template_dir + ".partial " + template_dir))
            error = "cannot copy the initdb'd data directory to " + template_dir;
        if (error.empty() && !scratch.empty())
            run_shell("rm -rf " + scratch);
    }
    close(lock);
    return error;
}

// One cluster per test process (start it from SetUpTestSuite, stop it from TearDownTestSuite).
// name prefixes the cluster's temporary directory and is the sessions' application_name.
class PgServer {
  public:
    explicit PgServer(std::string name) : name_(std::move(name)) {}
    PgServer(const PgServer &) = delete;
    PgServer &operator=(const PgServer &) = delete;

    // Empty when the cluster runs; otherwise why the tests are skipped.
    std::string start() {
        if (access((kPgBin + "/initdb").c_str(), X_OK) != 0)
            return kPgBin + "/initdb not found: install postgresql-15 to run the tests against PostgreSQL";
        // One template for every test file that uses a cluster.
        std::string template_dir = directory_of_this_binary() + "/pg_test_template";
        if (std::string error = prepare_pg_template(template_dir); !error.empty())
            return error;
        dir_ = make_cluster_dir(name_);
        if (dir_.empty())
            return "cannot make a directory for the cluster in /tmp";
        std::string data = dir_ + "/data";
        if (!run_shell("cp -a " + template_dir + " " + data))
            return "cannot copy " + template_dir;
        std::ofstream(data + "/postgresql.conf", std::ios::app) << "listen_addresses = ''\n"
                                                                << "unix_socket_directories = '" << dir_ << "'\n"
                                                                << "port = 5432\n"
                                                                << "fsync = off\n"
                                                                << "log_min_messages = warning\n";
        if (!run_shell(as_cluster_owner(kPgBin + "/pg_ctl -D " + data + " -l " + dir_ + "/server.log -w -t 60 start" +
                                        " >/dev/null")))
            return "pg_ctl start failed, see " + dir_ + "/server.log";
        started_ = true;
        return "";
    }

    void stop() {
        if (started_)
            run_shell(as_cluster_owner(kPgBin + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop >/dev/null"));
        if (!dir_.empty())
            run_shell("rm -rf " + dir_);
        started_ = false;
        dir_.clear();
    }

    std::string conninfo() const {
        return "host=" + dir_ + " port=5432 dbname=postgres user=postgres application_name=" + name_;
    }

  private:
    std::string name_;
    std::string dir_;
    bool started_ = false;
};

} // namespace pgfeed::notifier
