#include "extension_version.hpp"

#include <gtest/gtest.h>

using namespace pgfeed::notifier;

TEST(ExtensionVersion, the_same_major_minor_is_supported_whatever_the_patch) {
    EXPECT_EQ(extension_fit(std::string("0.5.0"), "0.5.0"), ExtensionFit::supported);
    EXPECT_EQ(extension_fit(std::string("0.5.7"), "0.5.0"), ExtensionFit::supported);
    EXPECT_EQ(extension_fit(std::string("0.5.0"), "0.5.3"), ExtensionFit::supported);
    EXPECT_EQ(supported_extension_versions("0.5.3"), "0.5.x");
}

TEST(ExtensionVersion, another_minor_or_major_is_too_old_or_too_new) {
    EXPECT_EQ(extension_fit(std::string("0.4.0"), "0.5.0"), ExtensionFit::too_old);
    EXPECT_EQ(extension_fit(std::string("0.4.99"), "0.5.0"), ExtensionFit::too_old);
    EXPECT_EQ(extension_fit(std::string("0.6.0"), "0.5.0"), ExtensionFit::too_new);
    EXPECT_EQ(extension_fit(std::string("1.0.0"), "0.5.0"), ExtensionFit::too_new);
    EXPECT_EQ(extension_fit(std::string("0.10.0"), "0.9.0"), ExtensionFit::too_new); // numbers, not text
    EXPECT_EQ(extension_fit(std::string("0.9.0"), "1.0.0"), ExtensionFit::too_old);
}

TEST(ExtensionVersion, missing_and_unreadable_versions_are_not_supported) {
    EXPECT_EQ(extension_fit(std::nullopt, "0.5.0"), ExtensionFit::missing);
    for (const char *odd : {"", "0.5", "0.5.0-dev", "0.5.0 ", "v0.5.0", "0.5.x", "-1.5.0"})
        EXPECT_EQ(extension_fit(std::string(odd), "0.5.0"), ExtensionFit::unreadable) << odd;
}

TEST(ExtensionVersion, each_verdict_says_what_to_do) {
    EXPECT_NE(describe_extension_fit(ExtensionFit::too_old, std::string("0.4.0"), "0.5.0")
                  .find("extension pgfeed 0.4.0 is older than this notifier supports (notifier 0.5.0 works with "
                        "extension 0.5.x): install the new release and run ALTER EXTENSION pgfeed UPDATE"),
              std::string::npos);
    EXPECT_NE(describe_extension_fit(ExtensionFit::too_new, std::string("0.6.0"), "0.5.0").find("newer"),
              std::string::npos);
    EXPECT_NE(describe_extension_fit(ExtensionFit::missing, std::nullopt, "0.5.0").find("CREATE EXTENSION pgfeed"),
              std::string::npos);
}

TEST(ExtensionVersion, the_build_has_the_projects_one_version) {
    EXPECT_EQ(extension_fit(std::string(PGFEED_NOTIFIER_VERSION)), ExtensionFit::supported);
}
