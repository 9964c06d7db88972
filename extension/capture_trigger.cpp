// Row triggers on attached tables: every change waits in the capture log for the commit-time flush
// (sequencer.cpp), which numbers inserts in commit order and applies the rest.
#include "capture_log.hpp"
#include "core/feed_spec.hpp"

extern "C" {
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

#include <optional>

namespace {

using namespace pgfeed;

// The columns an attached row contributes, as named by the trigger's arguments.
struct RowKey {
    int64_t activity_id = 0;
    std::optional<std::string> topic;
    TimestampTz created = 0;
    bool created_null = true;
};

int column_number(TupleDesc desc, const char *name, Relation rel) {
    int attnum = SPI_fnumber(desc, name);
    if (attnum <= 0)
        throw FeedError(ERRCODE_UNDEFINED_COLUMN,
                        std::string("attached table ") + RelationGetRelationName(rel) + " has no column \"" + name +
                            "\"",
                        "Detach and attach the table again after renaming columns.");
    return attnum;
}

RowKey read_row(HeapTuple tuple, TriggerData *trigger) {
    Relation rel = trigger->tg_relation;
    TupleDesc desc = RelationGetDescr(rel);
    char **args = trigger->tg_trigger->tgargs;
    const int id_col = column_number(desc, args[0], rel);
    const int topic_col = column_number(desc, args[1], rel);
    const int created_col = column_number(desc, args[2], rel);

    RowKey key;
    bool null = false;
    Datum id = heap_getattr(tuple, id_col, desc, &null);
    if (null)
        throw FeedError(ERRCODE_NOT_NULL_VIOLATION,
                        std::string("the id column \"") + args[0] + "\" of an attached row is NULL");
    switch (TupleDescAttr(desc, id_col - 1)->atttypid) {
    case INT2OID:
        key.activity_id = DatumGetInt16(id);
        break;
    case INT4OID:
        key.activity_id = DatumGetInt32(id);
        break;
    default:
        key.activity_id = DatumGetInt64(id);
        break;
    }
    Datum created = heap_getattr(tuple, created_col, desc, &key.created_null);
    if (!key.created_null)
        key.created = DatumGetTimestampTz(created);
    Datum topic = heap_getattr(tuple, topic_col, desc, &null);
    if (!null) {
        std::string value;
        pg_guard([&] {
            Oid output;
            bool varlena;
            getTypeOutputInfo(TupleDescAttr(desc, topic_col - 1)->atttypid, &output, &varlena);
            value = OidOutputFunctionCall(output, topic);
        });
        key.topic = std::string(args[1]) + ":" + value;
        if (key.topic->size() > kMaxTopicBytes)
            throw FeedError(ERRCODE_STRING_DATA_RIGHT_TRUNCATION, "topic \"" + key.topic->substr(0, 64) +
                                                                      "...\" is longer than " +
                                                                      std::to_string(kMaxTopicBytes) + " bytes");
    }
    return key;
}

// Logs an insert or a new created_at of the row `key` describes; the log copies the topic.
void capture_row(CapturedChange::Kind kind, Oid source, const RowKey &key) {
    CapturedChange change{};
    change.kind = kind;
    change.source = source;
    change.activity_id = key.activity_id;
    change.topic = key.topic ? key.topic->c_str() : nullptr;
    change.created = key.created;
    change.created_null = key.created_null;
    pg_guard([&] { capture_log_append(change); });
}

bool has_pending_insert(Oid source, int64_t activity_id) {
    bool pending = false;
    pg_guard([&] { pending = capture_log_has_insert(source, activity_id); });
    return pending;
}

// The row is gone from the feed: cancel its pending insert, or have its committed item removed
// at commit. Committed items change only there, locked in position order: that keeps a transaction
// changing several items from deadlocking with marks, which lock in that order too.
void capture_removal(Oid source, int64_t activity_id) {
    CapturedChange removal{};
    removal.kind =
        has_pending_insert(source, activity_id) ? CapturedChange::Kind::Cancel : CapturedChange::Kind::Delete;
    removal.source = source;
    removal.activity_id = activity_id;
    pg_guard([&] { capture_log_append(removal); });
}

void capture_update(Oid source, const RowKey &before, const RowKey &after) {
    if (before.activity_id == after.activity_id && before.topic == after.topic) {
        if (before.created_null == after.created_null && before.created == after.created)
            return;
        if (has_pending_insert(source, after.activity_id)) {
            capture_removal(source, before.activity_id);
            capture_row(CapturedChange::Kind::Insert, source, after);
            return;
        }
        capture_row(CapturedChange::Kind::Retime, source, after);
        return;
    }
    // A new topic or id is news to other readers: the item is published again at a new position.
    capture_removal(source, before.activity_id);
    capture_row(CapturedChange::Kind::Insert, source, after);
}

void require_row_trigger(FunctionCallInfo fcinfo) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw FeedError(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                        "pgfeed trigger functions are called by triggers only");
    TriggerData *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
    if (!TRIGGER_FIRED_FOR_ROW(trigger->tg_event) || trigger->tg_trigger->tgnargs != 3)
        throw FeedError(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                        "pgfeed._capture must be a row trigger created by pgfeed.attach");
}

} // namespace

PGFEED_FUNCTION(pgfeed_capture) {
    require_row_trigger(fcinfo);
    TriggerData *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
    const Oid source = RelationGetRelid(trigger->tg_relation);
    if (TRIGGER_FIRED_BY_INSERT(trigger->tg_event))
        capture_row(CapturedChange::Kind::Insert, source, read_row(trigger->tg_trigtuple, trigger));
    else if (TRIGGER_FIRED_BY_DELETE(trigger->tg_event))
        capture_removal(source, read_row(trigger->tg_trigtuple, trigger).activity_id);
    else if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event))
        capture_update(source, read_row(trigger->tg_trigtuple, trigger), read_row(trigger->tg_newtuple, trigger));
    return PointerGetDatum(nullptr);
}

PGFEED_FUNCTION(pgfeed_refuse_truncate) {
    TriggerData *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
    throw FeedError(ERRCODE_FEATURE_NOT_SUPPORTED,
                    std::string("cannot truncate ") +
                        (CALLED_AS_TRIGGER(fcinfo) ? RelationGetRelationName(trigger->tg_relation) : "a table") +
                        ": it is attached to pgfeed",
                    "DELETE the rows, or call pgfeed.detach first.");
}
