// pgfeed-notifier: reads its configuration, then runs the supervisor and its worker processes until
// SIGTERM or SIGINT.
#include "config.hpp"
#include "log.hpp"
#include "supervisor.hpp"

#include <iostream>
#include <string>
#include <sysexits.h>
#include <unistd.h>
#include <utility>

using namespace pgfeed::notifier;

namespace {

constexpr const char *kProgram = "pgfeed-notifier";

} // namespace

int main(int argc, char **argv, char **envp) {
    ConfigSources sources;
    Config config;
    try {
        sources = parse_command_line(argc, argv, envp);
        switch (sources.command) {
        case Command::help:
            std::cout << usage_text(kProgram);
            return 0;
        case Command::version:
            std::cout << kProgram << " " << PGFEED_NOTIFIER_VERSION << "\n";
            return 0;
        case Command::check_config:
            std::cout << describe_config(sources);
            return 0;
        case Command::run:
            config = load_config(sources);
        }
    } catch (const UsageError &error) {
        std::cerr << kProgram << ": " << error.what() << "\nTry '" << kProgram << " --help'.\n";
        return EX_USAGE;
    } catch (const ConfigError &error) {
        std::cerr << error.what() << "\n";
        return EX_CONFIG;
    }
    set_log_level(config.log.level);
    log_info("main", "started", {{"version", PGFEED_NOTIFIER_VERSION}, {"pid", getpid()}});
    return run_supervisor(sources, std::move(config));
}
