// Row triggers on attached tables: every change is written to pgfeed.pending by the transaction
// that makes it, so it commits, or rolls back with its savepoint, together with the row. The
// numbering step (numbering.cpp) turns committed changes into items after commit.
//
// The trigger runs with the rights of the role that writes the row; only its insert into
// pgfeed.pending runs with the rights of pgfeed's owner. That statement evaluates nothing of the
// app's: the payload's JSON is built from columns of built-in types only, checked on every row.
#include "arguments.hpp"
#include "core/feed_spec.hpp"
#include "outbox.hpp"
#include "privilege.hpp"
#include "spi.hpp"
#include "worker_link.hpp"

extern "C" {
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include <optional>

namespace {

using namespace pgfeed;

// Checked against pgfeed.sources in the same statement: a table that is not attached, or a
// trigger whose arguments are not the ones attach gave it, adds nothing. A partition's rows belong
// to the partitioned table that was attached.
Statement insert_pending{"INSERT INTO pgfeed.pending (op, source, activity_id, topic, created_at, payload) "
                         "SELECT $1::\"char\", s.source::pg_catalog.oid, $3, $4, $5, $6 FROM pgfeed.sources s "
                         "WHERE (s.source = $2::pg_catalog.regclass "
                         "OR s.source IN (SELECT relid FROM pg_catalog.pg_partition_ancestors($2))) "
                         "AND s.id_column = $7::name "
                         "AND s.topic_column = $8::name AND s.created_column = $9::name "
                         "AND s.payload_columns = $10::name[]"};

// The columns an attached row contributes, as named by the trigger's arguments.
struct RowKey {
    int64_t activity_id = 0;
    std::optional<std::string> topic;
    TimestampTz created = 0;
    bool created_null = true;
};

struct Capture {
    TriggerData *trigger;
    Relation rel;
    TupleDesc desc;
    char **args; // id, topic and created column, then the payload columns
    int nargs;
};

int column_number(const Capture &c, const char *name) {
    int attnum = SPI_fnumber(c.desc, name);
    if (attnum <= 0)
        throw FeedError(ERRCODE_UNDEFINED_COLUMN,
                        std::string("attached table ") + RelationGetRelationName(c.rel) + " has no column \"" + name +
                            "\"",
                        "Detach and attach the table again after renaming columns.");
    return attnum;
}

Oid column_type(const Capture &c, int attnum) { return TupleDescAttr(c.desc, attnum - 1)->atttypid; }

[[noreturn]] void wrong_type(const Capture &c, const char *column, const char *wanted) {
    throw FeedError(ERRCODE_DATATYPE_MISMATCH,
                    std::string("column \"") + column + "\" of attached table " + RelationGetRelationName(c.rel) +
                        " is no longer " + wanted,
                    "A column's type changed after pgfeed.attach: change it back, or detach the table.");
}

RowKey read_row(const Capture &c, HeapTuple tuple) {
    const int id_col = column_number(c, c.args[0]);
    const int topic_col = column_number(c, c.args[1]);
    const int created_col = column_number(c, c.args[2]);

    RowKey key;
    bool null = false;
    Datum id = heap_getattr(tuple, id_col, c.desc, &null);
    if (null)
        throw FeedError(ERRCODE_NOT_NULL_VIOLATION,
                        std::string("the id column \"") + c.args[0] + "\" of an attached row is NULL",
                        "Give every row of an attached table an id.");
    switch (column_type(c, id_col)) {
    case INT2OID:
        key.activity_id = DatumGetInt16(id);
        break;
    case INT4OID:
        key.activity_id = DatumGetInt32(id);
        break;
    case INT8OID:
        key.activity_id = DatumGetInt64(id);
        break;
    default:
        wrong_type(c, c.args[0], "an integer");
    }
    if (column_type(c, created_col) != TIMESTAMPTZOID)
        wrong_type(c, c.args[2], "timestamptz");
    Datum created = heap_getattr(tuple, created_col, c.desc, &key.created_null);
    if (!key.created_null)
        key.created = DatumGetTimestampTz(created);
    Datum topic = heap_getattr(tuple, topic_col, c.desc, &null);
    if (!null) {
        std::string value;
        // The type's output function: always C code installed by a superuser, never a cast.
        pg_guard([&] {
            Oid output;
            bool varlena;
            getTypeOutputInfo(column_type(c, topic_col), &output, &varlena);
            value = OidOutputFunctionCall(output, topic);
        });
        key.topic = std::string(c.args[1]) + ":" + value;
        if (key.topic->size() > kMaxTopicBytes)
            throw FeedError(ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
                            "topic \"" + key.topic->substr(0, 64) + "...\" is longer than " +
                                std::to_string(kMaxTopicBytes) + " bytes",
                            "Keep topic values short: they name what users follow.");
    }
    return key;
}

// Built-in types (and domains over them, arrays included) turn into JSON with built-in code only;
// json_build_object would call a cast to json that the owner of any other type can define.
bool publishable(Oid type) {
    Oid base = InvalidOid;
    pg_guard([&] { base = getBaseType(type); });
    return base < FirstNormalObjectId;
}

// The row's payload columns as a JSON object, NULL past kMaxPayloadBytes: an expression over the
// parameters from $first on, which `args` gets. The columns have built-in types only, so building
// the JSON evaluates nothing another role defined.
std::string payload_expression(const Capture &c, HeapTuple tuple, int first, std::vector<SqlArg> &args,
                               std::string &types) {
    std::string pairs;
    for (int i = 3; i < c.nargs; ++i) {
        const char *name = c.args[i];
        const int attnum = column_number(c, name);
        const Oid type = column_type(c, attnum);
        if (!publishable(type))
            wrong_type(c, name, "of a built-in type");
        bool null = false;
        Datum value = heap_getattr(tuple, attnum, c.desc, &null);
        args.push_back({type, value, null});
        char *quoted = nullptr;
        pg_guard([&] { quoted = quote_literal_cstr(name); });
        pairs += (i > 3 ? ", " : "") + std::string(quoted) + ", $" + std::to_string(first + i - 3);
        types += std::to_string(type) + " ";
    }
    return "(SELECT CASE WHEN pg_catalog.octet_length(j) <= " + std::to_string(kMaxPayloadBytes) +
           " THEN j END FROM (SELECT pg_catalog.json_build_object(" + pairs + ")::text AS j) x)";
}

// Writes the change into pgfeed.pending; `payload_row` is the row whose payload an insert carries.
void write_change(Spi &spi, const Capture &c, char op, const RowKey &key, HeapTuple payload_row) {
    // A plan is prepared for one list of parameter types: they are part of the text.
    static DynamicStatement insert_with_payload;
    std::vector<std::string> payload_columns;
    for (int i = 3; i < c.nargs; ++i)
        payload_columns.emplace_back(c.args[i]);
    if (payload_columns.size() > 16)
        throw FeedError(ERRCODE_PROGRAM_LIMIT_EXCEEDED, "an attached table publishes more than 16 payload columns",
                        "Detach it and attach it again with fewer payload_columns.");
    std::vector<SqlArg> args{text_param(std::string(1, op)),
                             oid_or_null(RelationGetRelid(c.rel)),
                             int8_param(key.activity_id),
                             key.topic ? text_param(*key.topic) : SqlArg{TEXTOID, 0, true},
                             SqlArg{TIMESTAMPTZOID, TimestampTzGetDatum(key.created), key.created_null},
                             SqlArg{TEXTOID, 0, true},
                             text_param(c.args[0]),
                             text_param(c.args[1]),
                             text_param(c.args[2]),
                             text_array_param(payload_columns)};
    std::string types;
    const std::string payload =
        payload_row && !payload_columns.empty() ? payload_expression(c, payload_row, 11, args, types) : "";
    {
        AsPgfeedOwner elevated; // the statement evaluates nothing of the app's
        if (payload.empty()) {
            spi.run(insert_pending,
                    {args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9]}, false);
        } else {
            std::string sql = insert_pending.sql;
            sql.replace(sql.find("$6"), 2, payload);
            sql += " /* " + types + "*/";
            Oid arg_types[26];
            Datum values[26];
            char nulls[26];
            for (std::size_t i = 0; i < args.size(); ++i) {
                arg_types[i] = args[i].type;
                values[i] = args[i].value;
                nulls[i] = args[i].is_null ? 'n' : ' ';
            }
            spi.run(insert_with_payload, sql, arg_types, values, nulls, static_cast<int>(args.size()));
        }
    }
    if (spi.processed() != 1)
        throw FeedError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        std::string("pgfeed._capture fired on ") + RelationGetRelationName(c.rel) +
                            ", which is not attached with these columns",
                        "pgfeed's triggers act only for tables attached with pgfeed.attach, as it created them.");
    note_pending_written();
    static bool told = false;
    if (!workers_enabled() && !told) {
        told = true;
        pg_guard([] {
            ereport(NOTICE, (errmsg("pgfeed is not in shared_preload_libraries: committed rows become feed items "
                                    "only at CALL pgfeed.flush()"),
                             errhint("Add pgfeed to shared_preload_libraries and restart, for the numbering worker.")));
        });
    }
}

void capture_update(Spi &spi, const Capture &c, HeapTuple old_row, HeapTuple new_row) {
    RowKey before = read_row(c, old_row), after = read_row(c, new_row);
    if (before.activity_id == after.activity_id && before.topic == after.topic) {
        if (before.created_null != after.created_null || before.created != after.created)
            write_change(spi, c, 't', after, nullptr);
        return;
    }
    // A new topic or id is news to other readers: the item is published again at a new position.
    write_change(spi, c, 'd', before, nullptr);
    write_change(spi, c, 'i', after, new_row);
}

Capture require_capture_trigger(FunctionCallInfo fcinfo) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw FeedError(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                        "pgfeed trigger functions are called by triggers only", "pgfeed.attach creates the triggers.");
    TriggerData *trigger = reinterpret_cast<TriggerData *>(fcinfo->context);
    // AFTER ROW only: a BEFORE trigger sees rows that another trigger may still change or cancel.
    if (!TRIGGER_FIRED_FOR_ROW(trigger->tg_event) || !TRIGGER_FIRED_AFTER(trigger->tg_event) ||
        trigger->tg_trigger->tgnargs < 3)
        throw FeedError(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                        "pgfeed._capture must be the AFTER ROW trigger created by pgfeed.attach",
                        "pgfeed.attach creates the triggers.");
    return {trigger, trigger->tg_relation, RelationGetDescr(trigger->tg_relation), trigger->tg_trigger->tgargs,
            trigger->tg_trigger->tgnargs};
}

} // namespace

PGFEED_FUNCTION(pgfeed_capture) {
    Capture c = require_capture_trigger(fcinfo);
    Spi spi;
    if (TRIGGER_FIRED_BY_INSERT(c.trigger->tg_event))
        write_change(spi, c, 'i', read_row(c, c.trigger->tg_trigtuple), c.trigger->tg_trigtuple);
    else if (TRIGGER_FIRED_BY_DELETE(c.trigger->tg_event))
        write_change(spi, c, 'd', read_row(c, c.trigger->tg_trigtuple), nullptr);
    else if (TRIGGER_FIRED_BY_UPDATE(c.trigger->tg_event))
        capture_update(spi, c, c.trigger->tg_trigtuple, c.trigger->tg_newtuple);
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
