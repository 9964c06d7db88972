// Which releases of the pgfeed extension this notifier works with: those of its own major.minor.
// A minor release may change the SQL functions the notifier calls (0.5.0 added the `within`
// argument of page and the counts); a patch release never does. Checked by the bridge before it
// takes the lead and by every worker's /readyz probe, so an extension updated or replaced while
// the notifier runs is noticed without a restart.
#pragma once

#include <optional>
#include <string>

namespace pgfeed::notifier {

// One row with the installed version, none when the database has no pgfeed. pg_extension is
// readable by every role.
constexpr const char *kExtensionVersionQuery =
    "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pgfeed'";

enum class ExtensionFit { supported, missing, too_old, too_new, unreadable };

// `installed` is nullopt when the database has no pgfeed; `notifier_version` is X.Y.Z.
ExtensionFit extension_fit(const std::optional<std::string> &installed,
                           const std::string &notifier_version = PGFEED_NOTIFIER_VERSION);

// "0.5.x": the versions a notifier of `notifier_version` works with.
std::string supported_extension_versions(const std::string &notifier_version = PGFEED_NOTIFIER_VERSION);

// One sentence for the log and /readyz: what is installed, and what to do about it.
std::string describe_extension_fit(ExtensionFit fit, const std::optional<std::string> &installed,
                                   const std::string &notifier_version = PGFEED_NOTIFIER_VERSION);

} // namespace pgfeed::notifier
