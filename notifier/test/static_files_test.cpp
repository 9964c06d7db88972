// Unit tests of which file a URL path names under http.static_dir (notifier/static_files.hpp),
// against a real directory tree in a temporary directory:
//
//   <base>/www/                    the root
//       index.html, app.js, .env
//       sub/page.html, sub/.hidden, sub/deeper/style.css
//       link-in       -> sub/page.html               (inside the root)
//       link-out      -> ../outside.txt              (outside)
//       link-sibling  -> ../www-private/secret.txt   (outside, in a directory named like the root)
//       link-up       -> ..                          (a directory outside)
//       link-absolute -> <base>/outside.txt          (outside, by an absolute target)
//       dangling      -> missing.txt
//   <base>/outside.txt
//   <base>/www-private/secret.txt
#include "static_files.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace pgfeed::notifier {
namespace {

namespace fs = std::filesystem;

class StaticFilePath : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "static_files_test.XXXXXX").string();
        ASSERT_NE(mkdtemp(pattern.data()), nullptr);
        // The root must be resolved (the temporary directory may sit behind a symbolic link).
        char resolved[PATH_MAX];
        ASSERT_NE(realpath(pattern.c_str(), resolved), nullptr);
        base_ = resolved;
        root_ = base_ + "/www";

        fs::create_directories(root_ + "/sub/deeper");
        fs::create_directories(base_ + "/www-private");
        for (const char *name :
             {"/www/index.html", "/www/app.js", "/www/.env", "/www/sub/page.html", "/www/sub/.hidden",
              "/www/sub/deeper/style.css", "/outside.txt", "/www-private/secret.txt"})
            std::ofstream(base_ + name) << name << "\n";
        fs::create_symlink("sub/page.html", root_ + "/link-in");
        fs::create_symlink("../outside.txt", root_ + "/link-out");
        fs::create_symlink("../www-private/secret.txt", root_ + "/link-sibling");
        fs::create_symlink("..", root_ + "/link-up");
        fs::create_symlink(base_ + "/outside.txt", root_ + "/link-absolute");
        fs::create_symlink("missing.txt", root_ + "/dangling");
    }

    void TearDown() override {
        if (!base_.empty())
            fs::remove_all(base_);
    }

    std::optional<std::string> path(std::string_view url_path) const { return static_file_path(root_, url_path); }

    std::string base_;
    std::string root_;
};

TEST_F(StaticFilePath, NamesAFileDirectlyInTheRoot) {
    EXPECT_EQ(path("/app.js"), root_ + "/app.js");
    EXPECT_EQ(path("/index.html"), root_ + "/index.html");
}

TEST_F(StaticFilePath, NamesAFileInASubdirectory) {
    EXPECT_EQ(path("/sub/page.html"), root_ + "/sub/page.html");
    EXPECT_EQ(path("/sub/deeper/style.css"), root_ + "/sub/deeper/style.css");
}

TEST_F(StaticFilePath, SlashNamesIndexHtml) { EXPECT_EQ(path("/"), root_ + "/index.html"); }

TEST_F(StaticFilePath, SlashNamesNothingWithoutIndexHtml) {
    fs::remove(root_ + "/index.html");
    EXPECT_EQ(path("/"), std::nullopt);
}

TEST_F(StaticFilePath, AMissingFileIsNone) {
    EXPECT_EQ(path("/missing.html"), std::nullopt);
    EXPECT_EQ(path("/sub/missing.html"), std::nullopt);
    EXPECT_EQ(path("/nowhere/page.html"), std::nullopt);
    EXPECT_EQ(path("/app.js/x"), std::nullopt);
}

TEST_F(StaticFilePath, RefusesMalformedPaths) {
    for (std::string_view url_path :
         {"", "relative", "index.html", "/.", "/..", "/...", "/./index.html", "/a/../b", "/sub/../index.html",
          "/sub/./page.html", "//x", "//index.html", "/sub//page.html", "/sub/", "/index.html/", "/dir/"})
        EXPECT_EQ(path(url_path), std::nullopt) << url_path;
}

TEST_F(StaticFilePath, RefusesANul) {
    EXPECT_EQ(path(std::string_view("/index.html\0", 12)), std::nullopt);
    EXPECT_EQ(path(std::string_view("/index.html\0.txt", 16)), std::nullopt);
    EXPECT_EQ(path(std::string_view("/\0", 2)), std::nullopt);
}

TEST_F(StaticFilePath, RefusesHiddenNamesThatExist) {
    EXPECT_EQ(path("/.env"), std::nullopt);
    EXPECT_EQ(path("/sub/.hidden"), std::nullopt);
}

TEST_F(StaticFilePath, FollowsASymbolicLinkInsideTheRoot) {
    // The answer is the resolved file.
    EXPECT_EQ(path("/link-in"), root_ + "/sub/page.html");
}

TEST_F(StaticFilePath, RefusesASymbolicLinkOutOfTheRoot) {
    EXPECT_EQ(path("/link-out"), std::nullopt);
    EXPECT_EQ(path("/link-absolute"), std::nullopt);
    EXPECT_EQ(path("/link-up/outside.txt"), std::nullopt);
}

TEST_F(StaticFilePath, WhatCountsIsWhereThePathResolves) {
    // Out of the root through a link, and back in: the file is inside.
    EXPECT_EQ(path("/link-up/www/index.html"), root_ + "/index.html");
}

TEST_F(StaticFilePath, RefusesASymbolicLinkIntoADirectoryNamedLikeTheRoot) {
    // <base>/www-private starts with the root's name: only a whole path segment counts as inside.
    EXPECT_EQ(path("/link-sibling"), std::nullopt);
}

TEST_F(StaticFilePath, ADanglingSymbolicLinkIsNone) { EXPECT_EQ(path("/dangling"), std::nullopt); }

TEST_F(StaticFilePath, AnswersOnlyPathsUnderTheRoot) {
    for (std::string_view url_path : {"/", "/app.js", "/sub/page.html", "/link-in", "/sub/deeper/style.css"}) {
        auto file = path(url_path);
        ASSERT_TRUE(file) << url_path;
        EXPECT_EQ(file->rfind(root_ + "/", 0), 0u) << url_path << " -> " << *file;
    }
}

TEST(StaticContentType, KnowsTheUsualExtensions) {
    EXPECT_STREQ(static_content_type("index.html"), "text/html; charset=utf-8");
    EXPECT_STREQ(static_content_type("app.js"), "text/javascript; charset=utf-8");
    EXPECT_STREQ(static_content_type("module.mjs"), "text/javascript; charset=utf-8");
    EXPECT_STREQ(static_content_type("style.css"), "text/css; charset=utf-8");
    EXPECT_STREQ(static_content_type("data.json"), "application/json");
    EXPECT_STREQ(static_content_type("logo.svg"), "image/svg+xml");
    EXPECT_STREQ(static_content_type("logo.png"), "image/png");
    EXPECT_STREQ(static_content_type("favicon.ico"), "image/x-icon");
    EXPECT_STREQ(static_content_type("robots.txt"), "text/plain; charset=utf-8");
    EXPECT_STREQ(static_content_type("photo.webp"), "image/webp");
    EXPECT_STREQ(static_content_type("font.woff2"), "font/woff2");
}

TEST(StaticContentType, GoesByTheLastExtensionOfAFullPath) {
    EXPECT_STREQ(static_content_type("/srv/www/sub/style.css"), "text/css; charset=utf-8");
    EXPECT_STREQ(static_content_type("/srv/www.html/app.js"), "text/javascript; charset=utf-8");
    EXPECT_STREQ(static_content_type("bundle.min.js"), "text/javascript; charset=utf-8");
}

TEST(StaticContentType, AnythingElseIsOctetStream) {
    for (std::string_view name : {"", "README", "html", "index.html.bak", "page.htm", "photo.jpg", "app.jsx",
                                  "archive.tar.gz", "font.woff", "app.js.map", "/srv/www.html/file"})
        EXPECT_STREQ(static_content_type(name), "application/octet-stream") << name;
}

TEST(StaticFiles, AnEmptyDirectoryServesNothing) { EXPECT_FALSE(StaticFiles("").enabled()); }

TEST(StaticFiles, AnExistingDirectoryIsServed) {
    EXPECT_TRUE(StaticFiles(fs::temp_directory_path().string()).enabled());
}

TEST(StaticFiles, ADirectoryThatCannotBeResolvedThrows) {
    EXPECT_THROW(StaticFiles("/nonexistent/pgfeed/static_files_test"), std::runtime_error);
}

} // namespace
} // namespace pgfeed::notifier
