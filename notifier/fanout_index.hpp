// Which open streams an event goes to, so that one event costs work proportional to the streams
// that receive it, not to all the streams of the process: activity events by topic, read events by
// user (design I6: a user's private events reach that user's streams only).
//
// Exact topics are hash lookups. Patterns ("mp_id:*", "*") are matched once per distinct pattern,
// not once per stream: thousands of streams following "*" cost one fnmatch.
#pragma once

#include "auth.hpp"

#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pgfeed::notifier {

template <typename Stream> class FanoutIndex {
  public:
    using Set = std::unordered_set<Stream *>;

    // `topics` are the stream's patterns (after narrow_topics); an empty list follows no topic.
    void add(Stream *stream, const std::string &user, const std::vector<std::string> &topics) {
        by_user_[user].insert(stream);
        for (const std::string &topic : topics)
            (is_pattern(topic) ? by_pattern_ : by_topic_)[topic].insert(stream);
    }

    // Takes the same user and topics as add().
    void remove(Stream *stream, const std::string &user, const std::vector<std::string> &topics) {
        erase(by_user_, user, stream);
        for (const std::string &topic : topics)
            erase(is_pattern(topic) ? by_pattern_ : by_topic_, topic, stream);
    }

    // Calls visit(stream) for every stream following a topic or pattern that matches `topic`; a
    // stream that matches through several patterns is visited once per match, so callers that
    // must deliver once mark what they delivered.
    template <typename Visit> void for_topic(const std::string &topic, Visit &&visit) const {
        auto exact = by_topic_.find(topic);
        if (exact != by_topic_.end())
            for (Stream *stream : exact->second)
                visit(stream);
        for (const auto &[pattern, streams] : by_pattern_)
            if (topic_matches(pattern, topic))
                for (Stream *stream : streams)
                    visit(stream);
    }

    template <typename Visit> void for_user(const std::string &user, Visit &&visit) const {
        auto found = by_user_.find(user);
        if (found != by_user_.end())
            for (Stream *stream : found->second)
                visit(stream);
    }

    bool empty() const { return by_user_.empty(); }

  private:
    static bool is_pattern(const std::string &topic) { return topic.find('*') != std::string::npos; }

    static void erase(std::unordered_map<std::string, Set> &map, const std::string &key, Stream *stream) {
        auto found = map.find(key);
        if (found == map.end())
            return;
        found->second.erase(stream);
        if (found->second.empty())
            map.erase(found);
    }

    std::unordered_map<std::string, Set> by_user_, by_topic_, by_pattern_;
};

} // namespace pgfeed::notifier
