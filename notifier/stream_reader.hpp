// Follows a Redis stream with XREAD BLOCK on a connection of its own (a blocked connection can do
// nothing else), handing entries over in stream order, each once, across reconnects: it resumes
// after the last entry it handed over. When entries after that one were trimmed before it could
// read them, it says so (on_gap): whoever must see every entry has to start over.
#pragma once

#include "event_ptr.hpp"
#include "redis_link.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace pgfeed::notifier {

struct StreamEntry {
    std::string id;
    std::vector<std::pair<std::string, std::string>> fields;
};

struct StreamReaderCallbacks {
    std::function<void(const std::vector<StreamEntry> &entries)> on_entries;
    std::function<void()> on_gap;
};

class StreamReader {
  public:
    StreamReader(event_base *base, RedisLinkOptions options, std::string stream, std::chrono::milliseconds block,
                 int count, StreamReaderCallbacks callbacks);
    ~StreamReader();
    StreamReader(const StreamReader &) = delete;
    StreamReader &operator=(const StreamReader &) = delete;

    // Reads the entries after `after`, a stream id; empty: only those added from now on.
    void start(std::string after = "");
    void stop();
    // The id of the last entry handed over, or where reading starts.
    const std::string &last_id() const { return last_id_; }

  private:
    void on_ready();
    void find_end();
    void check_gap();
    void read_next();
    void retry_later(const std::string &what, const std::string &error);

    std::string stream_;
    std::chrono::milliseconds block_;
    int count_;
    StreamReaderCallbacks callbacks_;
    std::string last_id_;
    bool running_ = false;
    RedisLink link_;
    EventPtr retry_timer_;
};

} // namespace pgfeed::notifier
