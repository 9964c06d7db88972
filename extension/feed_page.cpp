// pgfeed.page: one page of a feed, newest first, below a position cursor.
//
// Items come in position order from the feed's index; a user's read state is tested per item
// from the cached chunks. Reading unread items only, the runs of read items are jumped over in
// one step (a heavy reader's thousands of marks cost one chunk fetch), and below the horizon only
// positions with a bit are visited.
#include "arguments.hpp"
#include "privilege.hpp"
#include "source_checks.hpp"
#include "read_state.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
}

#include <algorithm>
#include <deque>
#include <limits>
#include <map>

namespace {

using namespace pgfeed;

constexpr int kMaxPageSize = 1000;
// Shorter runs of read items are stepped through: a jump costs a query.
constexpr int64_t kRunWorthJumping = 32;

// Items come without their topic's name: joining pgfeed.topics probed its index for every item
// fetched, spare ones included, and set a Memoize cache up on every call: half of a light reader's
// page. name_topics() looks the names of a page's rows up in one query.
#define ITEM_COLUMNS                                                                                                   \
    "SELECT i.position, i.activity_id, i.source::pg_catalog.oid, coalesce(i.topic_id, 0) AS topic_id, i.created_at "   \
    "FROM pgfeed.items i "

Statement all_items{ITEM_COLUMNS "WHERE i.position < $1 AND NOT i.deleted ORDER BY i.position DESC LIMIT $2"};
// $4, within: the LIKE patterns the topic must match, or NULL for no bound.
Statement topic_items{ITEM_COLUMNS "WHERE i.topic_id = (SELECT topic_id FROM pgfeed.topics WHERE name = $3 "
                                   "AND ($4::pg_catalog.text[] IS NULL OR name LIKE ANY($4))) "
                                   "AND i.position < $1 AND NOT i.deleted ORDER BY i.position DESC LIMIT $2"};
// One index scan per followed topic, merged: never a sort of the topics' whole history.
Statement followed_items{
    "SELECT x.*, tp.name FROM pgfeed.follows f JOIN pgfeed.topics tp ON tp.name = f.topic, LATERAL (" ITEM_COLUMNS
    "WHERE i.topic_id = tp.topic_id AND i.position < $1 AND NOT i.deleted "
    "ORDER BY i.position DESC LIMIT $2) x "
    "WHERE f.user_id = $3 AND ($4::pg_catalog.text[] IS NULL OR f.topic LIKE ANY($4)) "
    "ORDER BY x.position DESC LIMIT $2"};
Statement topic_names{"SELECT topic_id, name FROM pgfeed.topics WHERE topic_id = ANY($1)"};

struct PageRow {
    int64_t position;
    int64_t activity_id;
    Oid source;
    int32_t topic_id; // 0: none
    std::optional<std::string> topic;
    std::optional<int64_t> created_at;
    bool is_read;
};

// The feed's live items in descending position, fetched in batches.
class FeedCursor {
  public:
    FeedCursor(Spi &spi, const FeedSpec &feed, const SqlArg &within, int32_t user_id, int64_t below, int batch)
        : spi_(spi), feed_(feed), within_(within), user_id_(user_id), below_(below), batch_(batch) {}

    std::optional<PageRow> next() {
        if (buffer_.empty() && !exhausted_)
            fetch();
        if (buffer_.empty())
            return std::nullopt;
        PageRow row = std::move(buffer_.front());
        buffer_.pop_front();
        return row;
    }

    void seek_below(int64_t position) {
        while (!buffer_.empty() && buffer_.front().position >= position)
            buffer_.pop_front();
        if (buffer_.empty() && position < below_) {
            below_ = position;
            exhausted_ = false;
        }
    }

  private:
    void fetch() {
        std::vector<Row> rows;
        switch (feed_.kind) {
        case FeedSpec::Kind::All:
            rows = spi_.run(all_items, {int8_param(below_), int8_param(batch_)}, true);
            break;
        case FeedSpec::Kind::Topic:
            rows =
                spi_.run(topic_items, {int8_param(below_), int8_param(batch_), text_param(feed_.topic), within_}, true);
            break;
        case FeedSpec::Kind::Following:
            rows =
                spi_.run(followed_items, {int8_param(below_), int8_param(batch_), int4_param(user_id_), within_}, true);
            break;
        }
        exhausted_ = static_cast<int64_t>(rows.size()) < batch_;
        for (const Row &row : rows) {
            PageRow item{row.int8(1), row.int8(2), row.oid(3), row.int4(4), std::nullopt, std::nullopt, false};
            if (!row.is_null(5))
                item.created_at = row.int8(5);
            if (feed_.kind == FeedSpec::Kind::Topic)
                item.topic = feed_.topic;
            else if (feed_.kind == FeedSpec::Kind::Following)
                item.topic = row.text(6);
            buffer_.push_back(std::move(item));
        }
        if (!rows.empty())
            below_ = buffer_.back().position;
    }

    Spi &spi_;
    const FeedSpec &feed_;
    SqlArg within_;
    int32_t user_id_;
    int64_t below_;
    int64_t batch_;
    bool exhausted_ = false;
    std::deque<PageRow> buffer_;
};

// The names of the topics of the rows that have one and no name yet, in one query.
void name_topics(Spi &spi, std::vector<PageRow> &page) {
    std::vector<int32_t> ids;
    for (const PageRow &row : page)
        if (row.topic_id != 0 && !row.topic)
            ids.push_back(row.topic_id);
    if (ids.empty())
        return;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::map<int32_t, std::string> names;
    for (const Row &row : spi.run(topic_names, {int4_array_param(ids)}, true))
        names.emplace(row.int4(1), row.text(2));
    for (PageRow &row : page) {
        auto name = names.find(row.topic_id);
        if (row.topic_id != 0 && !row.topic && name != names.end())
            row.topic = name->second;
    }
}

std::vector<PageRow> read_page(Spi &spi, AsPgfeedOwner &rights, const std::string &user_key, const FeedSpec &feed,
                               const SqlArg &within, int page_size, int64_t before, bool unread_only) {
    Reader reader = load_reader(spi, user_key);
    std::vector<PageRow> page;
    if (feed.kind == FeedSpec::Kind::Following && !reader.exists)
        return page; // follows nothing
    ChunkCache bits(spi, reader, true);
    if (unread_only) {
        // A heavy reader's newest items are one long run of marks: start below it rather than
        // fetch a batch of read items first.
        int64_t top = std::min(before - 1, reader.last_position);
        if (top > reader.horizon && bits.test(top)) {
            int64_t run_start = std::max(bits.run_start(top), reader.horizon + 1);
            if (top - run_start >= kRunWorthJumping)
                before = run_start;
        }
    }
    // Reading unread items only, a few of the first are usually read: fetching some spare rows
    // costs less than a second query.
    FeedCursor cursor(spi, feed, within, reader.user_id, before,
                      unread_only ? page_size + page_size / 2 + 2 : page_size);
    while (static_cast<int>(page.size()) < page_size) {
        std::optional<PageRow> item = cursor.next();
        if (!item)
            break;
        if (!rights.caller_may_read(item->source))
            continue;
        const int64_t position = item->position;
        const bool covered = position <= reader.horizon;
        item->is_read = covered != bits.test(position);
        if (!unread_only || !item->is_read) {
            page.push_back(std::move(*item));
            continue;
        }
        if (covered) {
            // Below the horizon only a set bit makes an item unread.
            std::optional<int64_t> next_unread = bits.highest_set_below(position, 0);
            if (!next_unread)
                break;
            cursor.seek_below(*next_unread + 1);
        } else {
            int64_t run_start = std::max(bits.run_start(position), reader.horizon + 1);
            if (position - run_start >= kRunWorthJumping)
                cursor.seek_below(run_start);
        }
    }
    name_topics(spi, page);
    return page;
}

} // namespace

PGFEED_FUNCTION(pgfeed_page) {
    std::string user_key = user_key_arg(fcinfo, 0);
    FeedSpec feed = feed_arg(fcinfo, 1);
    require_not_null(fcinfo, 2, "page_size");
    int page_size = PG_GETARG_INT32(2);
    if (page_size < 1 || page_size > kMaxPageSize)
        throw FeedError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "page_size " + std::to_string(page_size) + " is outside 1.." + std::to_string(kMaxPageSize),
                        "Fetch further pages with before => the position of the last row.");
    std::optional<int64_t> before = optional_position_arg(fcinfo, 3, "before");
    require_not_null(fcinfo, 4, "unread_only");
    bool unread_only = PG_GETARG_BOOL(4);
    SqlArg within = within_arg(fcinfo, 5);
    require_feed_takes_bound(feed, within);

    std::vector<PageRow> page;
    {
        AsPgfeedOwner rights;
        Spi spi;
        require_known_feed(spi, feed);
        page = read_page(spi, rights, user_key, feed, within, page_size,
                         before.value_or(std::numeric_limits<int64_t>::max()), unread_only);
    }
    pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
    for (const PageRow &row : page) {
        std::string topic = row.topic.value_or("");
        pg_guard([&] {
            ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
            Datum values[6] = {Int64GetDatum(row.position),
                               Int64GetDatum(row.activity_id),
                               ObjectIdGetDatum(row.source),
                               row.topic ? CStringGetTextDatum(topic.c_str()) : Datum(0),
                               TimestampTzGetDatum(row.created_at.value_or(0)),
                               BoolGetDatum(row.is_read)};
            bool nulls[6] = {false, false, false, !row.topic, !row.created_at, false};
            tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        });
    }
    return Datum(0);
}
