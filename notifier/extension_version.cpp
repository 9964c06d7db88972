#include "extension_version.hpp"

#include <cstdio>

namespace pgfeed::notifier {

namespace {

struct MajorMinor {
    int major, minor;
    bool operator<(const MajorMinor &other) const {
        return major < other.major || (major == other.major && minor < other.minor);
    }
};

// X.Y.Z with decimal numbers and nothing else (a pre-release such as 0.6.0-dev is no release).
std::optional<MajorMinor> major_minor_of(const std::string &version) {
    int major = 0, minor = 0, patch = 0, length = 0;
    if (std::sscanf(version.c_str(), "%d.%d.%d%n", &major, &minor, &patch, &length) != 3 ||
        static_cast<size_t>(length) != version.size() || major < 0 || minor < 0 || patch < 0)
        return std::nullopt;
    return MajorMinor{major, minor};
}

} // namespace

ExtensionFit extension_fit(const std::optional<std::string> &installed, const std::string &notifier_version) {
    if (!installed)
        return ExtensionFit::missing;
    const auto have = major_minor_of(*installed), want = major_minor_of(notifier_version);
    if (!have || !want)
        return ExtensionFit::unreadable;
    if (*have < *want)
        return ExtensionFit::too_old;
    if (*want < *have)
        return ExtensionFit::too_new;
    return ExtensionFit::supported;
}

std::string supported_extension_versions(const std::string &notifier_version) {
    const auto want = major_minor_of(notifier_version);
    return want ? std::to_string(want->major) + "." + std::to_string(want->minor) + ".x" : notifier_version;
}

std::string describe_extension_fit(ExtensionFit fit, const std::optional<std::string> &installed,
                                   const std::string &notifier_version) {
    const std::string works_with =
        "notifier " + notifier_version + " works with extension " + supported_extension_versions(notifier_version);
    const std::string have = installed ? *installed : "";
    switch (fit) {
    case ExtensionFit::supported:
        return "extension pgfeed " + have + " is supported (" + works_with + ")";
    case ExtensionFit::missing:
        return "the database has no extension pgfeed (" + works_with + "): CREATE EXTENSION pgfeed";
    case ExtensionFit::too_old:
        return "extension pgfeed " + have + " is older than this notifier supports (" + works_with +
               "): install the new release and run ALTER EXTENSION pgfeed UPDATE";
    case ExtensionFit::too_new:
        return "extension pgfeed " + have + " is newer than this notifier supports (" + works_with +
               "): install the notifier of the extension's release";
    case ExtensionFit::unreadable:
        break;
    }
    return "extension pgfeed reports version \"" + have + "\", not X.Y.Z (" + works_with + ")";
}

} // namespace pgfeed::notifier
