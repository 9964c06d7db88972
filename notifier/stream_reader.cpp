#include "stream_reader.hpp"

#include "log.hpp"

namespace pgfeed::notifier {

namespace {

constexpr const char *kComponent = "stream";
constexpr int kRetryMs = 1000;

// One entry of an XREAD or XRANGE reply: [id, [field, value, ...]].
std::optional<StreamEntry> entry_of(const RedisReply &reply) {
    if (reply.type != RedisReply::Type::array || reply.elements.size() != 2 ||
        reply.elements[1].type != RedisReply::Type::array || reply.elements[1].elements.size() % 2)
        return std::nullopt;
    StreamEntry entry{reply.elements[0].str, {}};
    const auto &pairs = reply.elements[1].elements;
    for (std::size_t i = 0; i < pairs.size(); i += 2)
        entry.fields.emplace_back(pairs[i].str, pairs[i + 1].str);
    return entry;
}

} // namespace

StreamReader::StreamReader(event_base *base, RedisLinkOptions options, std::string stream,
                           std::chrono::milliseconds block, int count, StreamReaderCallbacks callbacks)
    : stream_(std::move(stream)), block_(block), count_(count), callbacks_(std::move(callbacks)),
      link_(base, std::move(options), {[this] { on_ready(); }, [] {}}),
      retry_timer_(evtimer_new(
          base, [](evutil_socket_t, short, void *self) { static_cast<StreamReader *>(self)->on_ready(); }, this)) {}

StreamReader::~StreamReader() { stop(); }

void StreamReader::start(std::string after) {
    last_id_ = std::move(after);
    running_ = true;
    link_.start();
}

void StreamReader::stop() {
    running_ = false;
    event_del(retry_timer_.get());
    link_.stop(); // pending replies come back lost, and are ignored
}

void StreamReader::retry_later(const std::string &what, const std::string &error) {
    log_error(kComponent, what, {{"stream", stream_}, {"error", error}});
    timeval tv{kRetryMs / 1000, (kRetryMs % 1000) * 1000};
    evtimer_add(retry_timer_.get(), &tv);
}

// A new connection: resume after the last entry handed over, unless entries after it are gone.
void StreamReader::on_ready() {
    if (!running_ || !link_.ready())
        return;
    if (last_id_.empty())
        find_end();
    else
        check_gap();
}

// "Only entries from now on" is pinned to the id of the newest entry now, so that a reconnect
// resumes from there instead of skipping what was added while the connection was down.
void StreamReader::find_end() {
    link_.command({"XREVRANGE", stream_, "+", "-", "COUNT", "1"}, [this](const RedisReply &reply) {
        if (reply.lost || !running_)
            return;
        if (reply.type != RedisReply::Type::array)
            return retry_later("cannot find the end of the stream", reply.str);
        auto newest = reply.elements.empty() ? std::nullopt : entry_of(reply.elements[0]);
        last_id_ = newest ? newest->id : "0-0";
        read_next();
    });
}

// Trimming removes the oldest entries first: while the last entry handed over is still there,
// nothing after it is gone. Once it is gone too, whether anything after it went with it cannot be
// told from ids, so that counts as a gap: a needless reset costs a refetch, a missed one loses events.
// (Redis 7.0 records deletions by XDEL in max-deleted-entry-id, but not those by trimming.)
void StreamReader::check_gap() {
    link_.command({"XRANGE", stream_, last_id_, last_id_}, [this](const RedisReply &reply) {
        if (reply.lost || !running_)
            return;
        if (reply.type != RedisReply::Type::array)
            return retry_later("cannot look up the last entry read", reply.str);
        if (reply.elements.empty() && last_id_ != "0-0" && callbacks_.on_gap)
            callbacks_.on_gap();
        read_next();
    });
}

void StreamReader::read_next() {
    link_.command({"XREAD", "COUNT", std::to_string(count_), "BLOCK", std::to_string(block_.count()), "STREAMS",
                   stream_, last_id_},
                  [this](const RedisReply &reply) {
                      if (reply.lost || !running_)
                          return;
                      if (reply.type == RedisReply::Type::nil) // BLOCK timed out: nothing new
                          return read_next();
                      if (reply.type != RedisReply::Type::array || reply.elements.size() != 1 ||
                          reply.elements[0].elements.size() != 2)
                          return retry_later("cannot read the stream",
                                             reply.type == RedisReply::Type::error ? reply.str : "unexpected reply");
                      std::vector<StreamEntry> entries;
                      for (const RedisReply &item : reply.elements[0].elements[1].elements)
                          if (auto entry = entry_of(item))
                              entries.push_back(std::move(*entry));
                      if (entries.empty())
                          return read_next();
                      last_id_ = entries.back().id;
                      const bool behind = static_cast<int>(entries.size()) == count_;
                      if (callbacks_.on_entries)
                          callbacks_.on_entries(entries);
                      if (!running_)
                          return;
                      // A full batch means the reader is behind, where trimming can overtake it.
                      behind ? check_gap() : read_next();
                  });
}

} // namespace pgfeed::notifier
