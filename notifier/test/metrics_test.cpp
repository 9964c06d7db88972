// Unit tests of the shared metrics area (notifier/metrics.hpp): values written through a worker's
// handle show up in render(), across fork() too, and the output is valid Prometheus text. When
// `promtool` is on PATH (or named by $PROMTOOL), it checks the output as well.
#include "metrics.hpp"

#include <gtest/gtest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgfeed::notifier {
namespace {

std::vector<std::string> lines_of(const std::string &text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

// Series (name and labels, as rendered) -> value, for every sample line.
std::map<std::string, std::string> samples_of(const std::string &text) {
    std::map<std::string, std::string> samples;
    for (const std::string &line : lines_of(text)) {
        if (line.empty() || line[0] == '#')
            continue;
        std::size_t space = line.rfind(' ');
        samples[line.substr(0, space)] = line.substr(space + 1);
    }
    return samples;
}

// The value of one series, or "absent".
std::string value_of(const MetricsArea &area, const std::string &series) {
    auto samples = samples_of(area.render());
    auto found = samples.find(series);
    return found == samples.end() ? "absent" : found->second;
}

std::string bucket(int worker, const char *le) {
    return "pgfeed_delivery_latency_seconds_bucket{worker=\"" + std::to_string(worker) + "\",le=\"" + le + "\"}";
}

// Runs `body` in a child process, as a worker would, and waits for it to exit.
template <typename Body> void in_child(Body body) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        body();
        _exit(0); // skip the test framework's atexit handlers in the child
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

// Every counter, every gauge and a few observations, in two workers.
std::unique_ptr<MetricsArea> busy_area() {
    auto area = MetricsArea::create(2);
    for (int w = 0; w < 2; ++w) {
        WorkerMetrics m = area->worker(w);
        for (std::size_t c = 0; c < kCounters; ++c)
            m.add(static_cast<Counter>(c), c + 1);
        for (std::size_t g = 0; g < kGauges; ++g)
            m.set(static_cast<Gauge>(g), static_cast<std::int64_t>(g) - 5);
        for (double seconds : {0.0005, 0.003, 0.2, 7.0, 99.0})
            m.observe_delivery(seconds);
    }
    area->count_worker_restart();
    return area;
}

TEST(Metrics, RefusesBadArguments) {
    EXPECT_THROW(MetricsArea::create(0), std::invalid_argument);
    EXPECT_THROW(MetricsArea::create(-1), std::invalid_argument);
    EXPECT_THROW(MetricsArea::create(1025), std::invalid_argument);
    auto area = MetricsArea::create(2);
    EXPECT_EQ(area->workers(), 2);
    EXPECT_THROW(area->worker(-1), std::out_of_range);
    EXPECT_THROW(area->worker(2), std::out_of_range);
    EXPECT_THROW(area->reset_gauges(2), std::out_of_range);
    EXPECT_NO_THROW(area->worker(1));
}

TEST(Metrics, StartsAtZero) {
    auto area = MetricsArea::create(1);
    EXPECT_EQ(value_of(*area, "pgfeed_connections{worker=\"0\"}"), "0");
    EXPECT_EQ(value_of(*area, "pgfeed_replaying{worker=\"0\"}"), "0");
    EXPECT_EQ(value_of(*area, "pgfeed_connections_opened_total{worker=\"0\"}"), "0");
    EXPECT_EQ(value_of(*area, "pgfeed_connections_closed_total{worker=\"0\",reason=\"drain\"}"), "0");
    EXPECT_EQ(value_of(*area, bucket(0, "+Inf")), "0");
    EXPECT_EQ(value_of(*area, "pgfeed_delivery_latency_seconds_sum{worker=\"0\"}"), "0.000000");
    EXPECT_EQ(value_of(*area, "pgfeed_delivery_latency_seconds_count{worker=\"0\"}"), "0");
    EXPECT_EQ(value_of(*area, "pgfeed_worker_restarts_total"), "0");
}

TEST(Metrics, AddSetObserveShowInRender) {
    auto area = MetricsArea::create(1);
    WorkerMetrics m = area->worker(0);
    m.add(Counter::connections_opened);
    m.add(Counter::connections_opened);
    m.add(Counter::closed_slow_client, 3);
    m.add(Counter::rejected_rate_limited);
    m.add(Counter::http_other, 7);
    m.add(Counter::sent_reset);
    m.add(Counter::events_replayed, 500);
    m.set(Gauge::connections, 5);
    m.add(Gauge::connections, -2);
    m.add(Gauge::replaying, 1);
    m.set(Gauge::stream_length, 1'000'000);
    m.observe_delivery(0.003);
    m.observe_delivery(0.25);

    auto samples = samples_of(area->render());
    EXPECT_EQ(samples["pgfeed_connections_opened_total{worker=\"0\"}"], "2");
    EXPECT_EQ(samples["pgfeed_connections_closed_total{worker=\"0\",reason=\"slow_client\"}"], "3");
    EXPECT_EQ(samples["pgfeed_connections_closed_total{worker=\"0\",reason=\"client\"}"], "0");
    EXPECT_EQ(samples["pgfeed_requests_rejected_total{worker=\"0\",status=\"429\",reason=\"rate_limited\"}"], "1");
    EXPECT_EQ(samples["pgfeed_requests_rejected_total{worker=\"0\",status=\"429\",reason=\"user_limit\"}"], "0");
    EXPECT_EQ(samples["pgfeed_http_requests_total{worker=\"0\",path=\"other\"}"], "7");
    EXPECT_EQ(samples["pgfeed_events_sent_total{worker=\"0\",kind=\"reset\"}"], "1");
    EXPECT_EQ(samples["pgfeed_events_replayed_total{worker=\"0\"}"], "500");
    EXPECT_EQ(samples["pgfeed_connections{worker=\"0\"}"], "3");
    EXPECT_EQ(samples["pgfeed_replaying{worker=\"0\"}"], "1");
    EXPECT_EQ(samples["pgfeed_stream_length{worker=\"0\"}"], "1000000");
    EXPECT_EQ(samples["pgfeed_delivery_latency_seconds_sum{worker=\"0\"}"], "0.253000");
    EXPECT_EQ(samples["pgfeed_delivery_latency_seconds_count{worker=\"0\"}"], "2");
}

TEST(Metrics, StatusGaugesAppearOnceSet) {
    auto area = MetricsArea::create(2);
    std::string text = area->render();
    // The family is announced, with no series: nobody knows the value yet.
    EXPECT_NE(text.find("# TYPE pgfeed_postgres_up gauge\n"), std::string::npos);
    EXPECT_EQ(text.find("pgfeed_postgres_up{"), std::string::npos);
    EXPECT_EQ(text.find("pgfeed_redis_up{"), std::string::npos);

    area->worker(0).set(Gauge::postgres_up, 1);
    area->worker(1).set(Gauge::redis_up, 0);
    EXPECT_EQ(value_of(*area, "pgfeed_postgres_up{worker=\"0\"}"), "1");
    EXPECT_EQ(value_of(*area, "pgfeed_postgres_up{worker=\"1\"}"), "absent");
    EXPECT_EQ(value_of(*area, "pgfeed_redis_up{worker=\"0\"}"), "absent");
    EXPECT_EQ(value_of(*area, "pgfeed_redis_up{worker=\"1\"}"), "0");
}

TEST(Metrics, BridgeLagIsStoredInMillisecondsRenderedInSeconds) {
    auto area = MetricsArea::create(1);
    WorkerMetrics m = area->worker(0);
    const std::string series = "pgfeed_bridge_lag_seconds{worker=\"0\"}";
    const std::pair<std::int64_t, const char *> cases[] = {
        {0, "0.000"},
        {5, "0.005"},
        {40, "0.040"},
        {1234, "1.234"},
        {60000, "60.000"},
        {-1500, "-1.500"},
        {std::numeric_limits<std::int64_t>::min(), "-9223372036854775.808"},
    };
    for (const auto &[millis, text] : cases) {
        m.set(Gauge::bridge_lag_ms, millis);
        EXPECT_EQ(value_of(*area, series), text) << millis;
    }
}

TEST(Metrics, BucketsAreCumulative) {
    auto area = MetricsArea::create(1);
    WorkerMetrics m = area->worker(0);
    m.observe_delivery(0.001); // on a bound: le means "less than or equal"
    m.observe_delivery(0.0010004);
    m.observe_delivery(0.04);
    m.observe_delivery(0.5);
    m.observe_delivery(10.5); // only +Inf
    m.observe_delivery(-2);   // clock skew: counted as 0
    m.observe_delivery(std::nan(""));

    const std::pair<const char *, const char *> expected[] = {
        {"0.001", "4"}, {"0.0025", "4"}, {"0.005", "4"}, {"0.01", "4"}, {"0.025", "4"}, {"0.05", "5"}, {"0.1", "5"},
        {"0.25", "5"},  {"0.5", "6"},    {"1", "6"},     {"2.5", "6"},  {"5", "6"},     {"10", "6"},   {"+Inf", "7"},
    };
    auto samples = samples_of(area->render());
    for (const auto &[le, count] : expected)
        EXPECT_EQ(samples[bucket(0, le)], count) << le;
    EXPECT_EQ(samples["pgfeed_delivery_latency_seconds_count{worker=\"0\"}"], "7");
    EXPECT_EQ(samples["pgfeed_delivery_latency_seconds_sum{worker=\"0\"}"], "11.042000");

    // Buckets appear in increasing order of le, each at least the one before.
    std::vector<unsigned long> counts;
    for (const std::string &line : lines_of(area->render()))
        if (line.rfind("pgfeed_delivery_latency_seconds_bucket{", 0) == 0)
            counts.push_back(std::stoul(line.substr(line.rfind(' ') + 1)));
    ASSERT_EQ(counts.size(), 14u);
    for (std::size_t i = 1; i < counts.size(); ++i)
        EXPECT_LE(counts[i - 1], counts[i]) << i;
}

TEST(Metrics, HugeLatencyIsCapped) {
    auto area = MetricsArea::create(1);
    area->worker(0).observe_delivery(std::numeric_limits<double>::infinity());
    area->worker(0).observe_delivery(1e300);
    EXPECT_EQ(value_of(*area, "pgfeed_delivery_latency_seconds_sum{worker=\"0\"}"), "2000000.000000");
    EXPECT_EQ(value_of(*area, bucket(0, "+Inf")), "2");
}

TEST(Metrics, EachWorkerHasItsSlotAndAReaderSumsThem) {
    auto area = MetricsArea::create(3);
    area->worker(0).add(Gauge::connections, 4);
    area->worker(2).add(Gauge::connections, 6);
    area->worker(2).add(Gauge::connections, -1);
    area->worker(0).add(Counter::stream_entries_read, 10);
    area->worker(2).add(Counter::stream_entries_read, 20);
    EXPECT_EQ(area->sum(Gauge::connections), 9);
    EXPECT_EQ(area->sum(Gauge::replaying), 0);

    auto samples = samples_of(area->render());
    EXPECT_EQ(samples["pgfeed_connections{worker=\"0\"}"], "4");
    EXPECT_EQ(samples["pgfeed_connections{worker=\"1\"}"], "0");
    EXPECT_EQ(samples["pgfeed_connections{worker=\"2\"}"], "5");
    EXPECT_EQ(samples["pgfeed_stream_entries_read_total{worker=\"0\"}"], "10");
    EXPECT_EQ(samples["pgfeed_stream_entries_read_total{worker=\"1\"}"], "0");
    EXPECT_EQ(samples["pgfeed_stream_entries_read_total{worker=\"2\"}"], "20");
}

TEST(Metrics, AChildsWritesAreSeenByTheParent) {
    auto area = MetricsArea::create(2);
    in_child([&] {
        WorkerMetrics m = area->worker(1);
        m.add(Counter::connections_opened, 3);
        m.add(Counter::stream_gaps);
        m.set(Gauge::connections, 2);
        m.set(Gauge::redis_up, 1);
        m.observe_delivery(0.02);
    });
    if (HasFatalFailure())
        return;
    auto samples = samples_of(area->render());
    EXPECT_EQ(samples["pgfeed_connections_opened_total{worker=\"1\"}"], "3");
    EXPECT_EQ(samples["pgfeed_connections_opened_total{worker=\"0\"}"], "0");
    EXPECT_EQ(samples["pgfeed_stream_gaps_total{worker=\"1\"}"], "1");
    EXPECT_EQ(samples["pgfeed_connections{worker=\"1\"}"], "2");
    EXPECT_EQ(samples["pgfeed_redis_up{worker=\"1\"}"], "1");
    EXPECT_EQ(samples[bucket(1, "0.025")], "1");
    EXPECT_EQ(samples[bucket(1, "0.01")], "0");
    EXPECT_EQ(area->sum(Gauge::connections), 2);
}

TEST(Metrics, ARestartedWorkerKeepsCountersLosesGauges) {
    auto area = MetricsArea::create(2);
    area->worker(0).set(Gauge::connections, 8);
    in_child([&] {
        WorkerMetrics m = area->worker(1);
        m.add(Counter::connections_opened, 5);
        m.add(Counter::closed_client, 2);
        m.set(Gauge::connections, 3);
        m.set(Gauge::replaying, 1);
        m.set(Gauge::redis_up, 1);
        m.set(Gauge::stream_length, 42);
        m.observe_delivery(0.1);
    });
    if (HasFatalFailure())
        return;
    // What the supervisor does when it reaps the worker and forks a replacement.
    area->reset_gauges(1);
    area->count_worker_restart();

    auto samples = samples_of(area->render());
    EXPECT_EQ(samples["pgfeed_connections_opened_total{worker=\"1\"}"], "5");
    EXPECT_EQ(samples["pgfeed_connections_closed_total{worker=\"1\",reason=\"client\"}"], "2");
    EXPECT_EQ(samples["pgfeed_delivery_latency_seconds_count{worker=\"1\"}"], "1");
    EXPECT_EQ(samples["pgfeed_connections{worker=\"1\"}"], "0");
    EXPECT_EQ(samples["pgfeed_replaying{worker=\"1\"}"], "0");
    EXPECT_EQ(samples.count("pgfeed_redis_up{worker=\"1\"}"), 0u);
    EXPECT_EQ(samples.count("pgfeed_stream_length{worker=\"1\"}"), 0u);
    EXPECT_EQ(samples["pgfeed_worker_restarts_total"], "1");
    // The other worker is untouched.
    EXPECT_EQ(samples["pgfeed_connections{worker=\"0\"}"], "8");

    // The replacement counts on from where the dead one stopped.
    in_child([&] { area->worker(1).add(Counter::connections_opened); });
    if (HasFatalFailure())
        return;
    EXPECT_EQ(value_of(*area, "pgfeed_connections_opened_total{worker=\"1\"}"), "6");
}

// The text format 0.0.4 grammar, line by line, and the rules across lines: one HELP and one TYPE
// per family before its samples, a family's samples together, no series twice.
TEST(Metrics, RenderMatchesTheTextFormat) {
    const std::string name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
    const std::string label = "[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\"";
    const std::string value = "[+-]?(?:Inf|NaN|[0-9]+(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)";
    const std::regex help_line("# HELP (" + name + ") (?:[^\\\\\\n]|\\\\[\\\\n])*");
    const std::regex type_line("# TYPE (" + name + ") (counter|gauge|histogram|summary|untyped)");
    const std::regex sample_line("(" + name + ")(?:\\{" + label + "(?:," + label + ")*\\})? " + value +
                                 "(?: -?[0-9]+)?");

    auto area = busy_area();
    std::string text = area->render();
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');

    std::set<std::string> helped, typed, series;
    std::string family, type;
    std::size_t sample_count = 0;
    for (const std::string &line : lines_of(text)) {
        std::smatch match;
        if (std::regex_match(line, match, help_line)) {
            EXPECT_TRUE(helped.insert(match[1]).second) << "second HELP: " << line;
            family = match[1];
            type.clear();
        } else if (std::regex_match(line, match, type_line)) {
            EXPECT_EQ(match[1], family) << "TYPE without its HELP: " << line;
            EXPECT_TRUE(typed.insert(match[1]).second) << "second TYPE: " << line;
            type = match[2];
        } else if (std::regex_match(line, match, sample_line)) {
            ++sample_count;
            std::string sample_name = match[1];
            bool belongs = sample_name == family;
            if (type == "histogram")
                belongs = sample_name == family + "_bucket" || sample_name == family + "_sum" ||
                          sample_name == family + "_count";
            EXPECT_TRUE(belongs) << "sample outside its family " << family << ": " << line;
            EXPECT_FALSE(type.empty()) << "sample before TYPE: " << line;
            EXPECT_TRUE(series.insert(line.substr(0, line.rfind(' '))).second) << "series twice: " << line;
        } else {
            ADD_FAILURE() << "not a text format line: [" << line << "]";
        }
    }
    EXPECT_EQ(helped, typed);
    EXPECT_EQ(helped.size(), 18u);
    // Per worker: every counter, every gauge (all set), 14 buckets, _sum and _count; then restarts.
    EXPECT_EQ(sample_count, 2 * (kCounters + kGauges + 16) + 1);
    EXPECT_EQ(samples_of(text)["pgfeed_worker_restarts_total"], "1");
    EXPECT_EQ(samples_of(text)["pgfeed_bridge_lag_seconds{worker=\"1\"}"], "-0.001");
}

std::string find_promtool() {
    if (const char *named = std::getenv("PROMTOOL"); named && *named)
        return named;
    const char *path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        std::string candidate = (dir.empty() ? "." : dir) + "/promtool";
        if (access(candidate.c_str(), X_OK) == 0)
            return candidate;
    }
    return "";
}

TEST(Metrics, PromtoolAcceptsTheRender) {
    std::string promtool = find_promtool();
    if (promtool.empty())
        GTEST_SKIP() << "promtool not found (PATH or $PROMTOOL); the grammar test still ran";

    char file[] = "/tmp/metrics_test_XXXXXX";
    int fd = mkstemp(file);
    ASSERT_GE(fd, 0);
    std::string text = busy_area()->render();
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);

    std::string command = "'" + promtool + "' check metrics < " + file + " 2>&1";
    FILE *pipe = popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string output;
    char buffer[512];
    for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;)
        output.append(buffer, n);
    int status = pclose(pipe);
    unlink(file);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output << "\n" << text;
    EXPECT_EQ(output, "");
}

} // namespace
} // namespace pgfeed::notifier
