// Unit tests of the logfmt lines (notifier/log.hpp).
#include "log.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <unistd.h>

namespace pgfeed::notifier {
namespace {

std::chrono::system_clock::time_point at_utc(int year, int month, int day, int hour, int minute, int second,
                                             int millisecond) {
    std::tm utc{};
    utc.tm_year = year - 1900;
    utc.tm_mon = month - 1;
    utc.tm_mday = day;
    utc.tm_hour = hour;
    utc.tm_min = minute;
    utc.tm_sec = second;
    return std::chrono::system_clock::from_time_t(timegm(&utc)) + std::chrono::milliseconds(millisecond);
}

// What the calls in `body` write to stderr.
template <typename Body> std::string captured_stderr(Body body) {
    std::FILE *capture = std::tmpfile();
    int saved = dup(STDERR_FILENO);
    dup2(fileno(capture), STDERR_FILENO);
    body();
    dup2(saved, STDERR_FILENO);
    close(saved);
    std::string text;
    char buffer[4096];
    ssize_t count;
    lseek(fileno(capture), 0, SEEK_SET);
    while ((count = read(fileno(capture), buffer, sizeof buffer)) > 0)
        text.append(buffer, static_cast<std::size_t>(count));
    std::fclose(capture);
    return text;
}

// Restores the process-wide level whatever a test sets.
class LogLevelTest : public ::testing::Test {
  protected:
    void TearDown() override { set_log_level(LogLevel::info); }
};

TEST(Logfmt, BareValues) {
    EXPECT_EQ(logfmt_value("12"), "12");
    EXPECT_EQ(logfmt_value("bridge"), "bridge");
    EXPECT_EQ(logfmt_value("pgfeed:events"), "pgfeed:events");
    EXPECT_EQ(logfmt_value("C:\\dir"), "C:\\dir");
    EXPECT_EQ(logfmt_value("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(Logfmt, QuotedValues) {
    EXPECT_EQ(logfmt_value(""), "\"\"");
    EXPECT_EQ(logfmt_value("moved events"), "\"moved events\"");
    EXPECT_EQ(logfmt_value("a=b"), "\"a=b\"");
    EXPECT_EQ(logfmt_value("say \"hi\""), "\"say \\\"hi\\\"\"");
    EXPECT_EQ(logfmt_value("\""), "\"\\\"\"");
    EXPECT_EQ(logfmt_value("a b\\c"), "\"a b\\\\c\"");
}

TEST(Logfmt, ControlCharactersAreEscaped) {
    EXPECT_EQ(logfmt_value("line\nbreak"), "\"line\\nbreak\"");
    EXPECT_EQ(logfmt_value("tab\there"), "\"tab\\there\"");
    EXPECT_EQ(logfmt_value("cr\r"), "\"cr\\r\"");
    EXPECT_EQ(logfmt_value(std::string("nul\0x", 5)), "\"nul\\u0000x\"");
    EXPECT_EQ(logfmt_value("bell\x07"), "\"bell\\u0007\"");
    EXPECT_EQ(logfmt_value("del\x7f"), "\"del\\u007f\"");
}

TEST(Logfmt, Line) {
    EXPECT_EQ(format_log_line(at_utc(2026, 11, 23, 10, 0, 0, 123), LogLevel::info, "bridge", "moved events",
                              {{"events", 12}}),
              "ts=2026-11-23T10:00:00.123Z level=info msg=\"moved events\" component=bridge events=12\n");
}

TEST(Logfmt, FieldsOfEveryKind) {
    std::string reason = "connection refused";
    EXPECT_EQ(format_log_line(at_utc(2026, 1, 2, 3, 4, 5, 6), LogLevel::warn, "redis", "reconnecting",
                              {{"attempt", 3},
                               {"delay_ms", -1L},
                               {"ready", false},
                               {"reason", reason},
                               {"host", "127.0.0.1"},
                               {"lag", std::string_view("0")}}),
              "ts=2026-01-02T03:04:05.006Z level=warn msg=reconnecting component=redis attempt=3 delay_ms=-1 "
              "ready=false reason=\"connection refused\" host=127.0.0.1 lag=0\n");
}

TEST(Logfmt, MessageAndComponentAreEscapedToo) {
    EXPECT_EQ(format_log_line(at_utc(2026, 1, 1, 0, 0, 0, 0), LogLevel::error, "a b", "x=\"1\"\n", {}),
              "ts=2026-01-01T00:00:00.000Z level=error msg=\"x=\\\"1\\\"\\n\" component=\"a b\"\n");
}

TEST(LogLevels, Names) {
    for (LogLevel level : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error})
        EXPECT_EQ(parse_log_level(log_level_name(level)), level);
    EXPECT_EQ(parse_log_level("warning"), std::nullopt);
    EXPECT_EQ(parse_log_level("INFO"), std::nullopt);
    EXPECT_EQ(parse_log_level(""), std::nullopt);
}

TEST_F(LogLevelTest, FilterDropsLinesBelowTheLevel) {
    set_log_level(LogLevel::warn);
    EXPECT_EQ(log_level(), LogLevel::warn);
    std::string written = captured_stderr([] {
        log_debug("test", "hidden");
        log_info("test", "hidden");
        log_warn("test", "shown", {{"n", 1}});
        log_error("test", "shown too");
    });
    EXPECT_EQ(written.find("hidden"), std::string::npos);
    ASSERT_NE(written.find(" level=warn msg=shown component=test n=1\n"), std::string::npos) << written;
    ASSERT_NE(written.find(" level=error msg=\"shown too\" component=test\n"), std::string::npos) << written;
    EXPECT_EQ(written.rfind("ts=", 0), 0u);
}

TEST_F(LogLevelTest, DebugShowsEverything) {
    set_log_level(LogLevel::debug);
    std::string written = captured_stderr([] { log_debug("test", "detail"); });
    EXPECT_NE(written.find(" level=debug msg=detail component=test\n"), std::string::npos) << written;
}

} // namespace
} // namespace pgfeed::notifier
