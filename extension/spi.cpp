#include "spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include <exception>

namespace pgfeed {

SqlArg int4_param(int32_t v) { return {INT4OID, Int32GetDatum(v), false}; }
SqlArg int8_param(int64_t v) { return {INT8OID, Int64GetDatum(v), false}; }
SqlArg int8_or_null(std::optional<int64_t> v) { return {INT8OID, Int64GetDatum(v.value_or(0)), !v}; }
SqlArg oid_or_null(Oid v) { return {OIDOID, ObjectIdGetDatum(v), v == InvalidOid}; }

SqlArg text_param(const std::string &v) {
    Datum d = 0;
    pg_guard([&] { d = PointerGetDatum(cstring_to_text_with_len(v.data(), static_cast<int>(v.size()))); });
    return {TEXTOID, d, false};
}

SqlArg bytea_param(const uint8_t *data, std::size_t size) {
    Datum d = 0;
    pg_guard([&] {
        bytea *b = static_cast<bytea *>(palloc(VARHDRSZ + size));
        SET_VARSIZE(b, VARHDRSZ + size);
        memcpy(VARDATA(b), data, size);
        d = PointerGetDatum(b);
    });
    return {BYTEAOID, d, false};
}

namespace {
SqlArg array_param(Oid array_type, Oid element_type, std::vector<Datum> &elements, bool *nulls) {
    Datum d = 0;
    pg_guard([&] {
        int16 len;
        bool byval;
        char align;
        get_typlenbyvalalign(element_type, &len, &byval, &align);
        int dims[1] = {static_cast<int>(elements.size())};
        int lbs[1] = {1};
        d = PointerGetDatum(construct_md_array(elements.data(), nulls, 1, dims, lbs, element_type, len, byval, align));
    });
    return {array_type, d, false};
}
} // namespace

SqlArg int8_array_param(const std::vector<int64_t> &values) {
    std::vector<Datum> elements;
    for (int64_t v : values)
        elements.push_back(Int64GetDatum(v));
    return array_param(INT8ARRAYOID, INT8OID, elements, nullptr);
}

SqlArg int4_array_param(const std::vector<int32_t> &values) {
    std::vector<Datum> elements;
    for (int32_t v : values)
        elements.push_back(Int32GetDatum(v));
    return array_param(INT4ARRAYOID, INT4OID, elements, nullptr);
}

SqlArg oid_array_param(const std::vector<Oid> &values) {
    std::vector<Datum> elements;
    for (Oid v : values)
        elements.push_back(ObjectIdGetDatum(v));
    return array_param(OIDARRAYOID, OIDOID, elements, nullptr);
}

SqlArg text_array_param(const std::vector<std::string> &values) {
    std::vector<Datum> elements;
    std::vector<char> nulls; // bool storage that std::vector<bool> cannot give
    for (const std::string &v : values) {
        nulls.push_back(v.empty());
        elements.push_back(v.empty() ? Datum(0) : text_param(v).value);
    }
    return array_param(TEXTARRAYOID, TEXTOID, elements, reinterpret_cast<bool *>(nulls.data()));
}

SqlArg timestamptz_array_param(const std::vector<int64_t> &values, const std::vector<bool> &is_null) {
    std::vector<Datum> elements;
    std::vector<char> nulls;
    for (std::size_t i = 0; i < values.size(); ++i) {
        elements.push_back(TimestampTzGetDatum(values[i]));
        nulls.push_back(is_null[i]);
    }
    return array_param(TIMESTAMPTZARRAYOID, TIMESTAMPTZOID, elements, reinterpret_cast<bool *>(nulls.data()));
}

Datum Row::get(int column) const {
    bool null;
    return heap_getattr(tuple_, column, desc_, &null);
}

bool Row::is_null(int column) const {
    bool null;
    heap_getattr(tuple_, column, desc_, &null);
    return null;
}
int64_t Row::int8(int column) const { return DatumGetInt64(get(column)); }
int32_t Row::int4(int column) const { return DatumGetInt32(get(column)); }
bool Row::boolean(int column) const { return DatumGetBool(get(column)); }
Oid Row::oid(int column) const { return DatumGetObjectId(get(column)); }

std::string Row::text(int column) const {
    std::string out;
    Datum d = get(column);
    pg_guard([&] {
        struct varlena *t = PG_DETOAST_DATUM_PACKED(d);
        out.assign(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
    });
    return out;
}

std::vector<uint8_t> Row::bytea(int column) const {
    std::vector<uint8_t> out;
    Datum d = get(column);
    const uint8_t *data = nullptr;
    std::size_t size = 0;
    pg_guard([&] {
        struct varlena *b = PG_DETOAST_DATUM_PACKED(d);
        data = reinterpret_cast<const uint8_t *>(VARDATA_ANY(b));
        size = VARSIZE_ANY_EXHDR(b);
    });
    out.assign(data, data + size);
    return out;
}

Spi::Spi() {
    pg_guard([] {
        if (SPI_connect() != SPI_OK_CONNECT)
            elog(ERROR, "pgfeed: SPI_connect failed");
    });
}

Spi::~Spi() {
    // After an error the aborting transaction unwinds SPI itself; finishing here could raise again.
    if (std::uncaught_exceptions() == 0)
        pg_guard([] { SPI_finish(); });
}

namespace {
enum class SnapshotChoice { Caller, Fresh, Latest };

// Parameters in the arrays SPI takes.
struct PackedArgs {
    explicit PackedArgs(std::initializer_list<SqlArg> params) {
        for (const SqlArg &p : params) {
            types[n] = p.type;
            values[n] = p.value;
            nulls[n] = p.is_null ? 'n' : ' ';
            ++n;
        }
    }
    Oid types[16];
    Datum values[16];
    char nulls[16];
    int n = 0;
};

std::vector<Row> collect(int rc, uint64_t &processed) {
    if (rc < 0)
        throw std::runtime_error(std::string("SPI failed: ") + SPI_result_code_string(rc));
    processed = SPI_processed;
    std::vector<Row> rows;
    if (SPI_tuptable)
        for (uint64_t i = 0; i < SPI_processed; ++i)
            rows.emplace_back(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
    return rows;
}

// Generic plans: every statement here is a keyed index access whose best plan does not depend on
// the values, and re-planning per call would cost more than running it. Call inside pg_guard.
SPIPlanPtr prepare_kept(const char *sql, PackedArgs &args) {
    SPIPlanPtr plan = SPI_prepare_cursor(sql, args.n, args.types, CURSOR_OPT_GENERIC_PLAN);
    if (!plan)
        elog(ERROR, "pgfeed: could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    return plan;
}

std::vector<Row> execute(Statement &statement, std::initializer_list<SqlArg> params, SnapshotChoice snapshot,
                         uint64_t &processed) {
    PackedArgs args(params);
    int rc = 0;
    pg_guard([&] {
        if (!statement.plan)
            statement.plan = prepare_kept(statement.sql, args);
        if (snapshot == SnapshotChoice::Latest)
            rc = SPI_execute_snapshot(statement.plan, args.values, args.nulls, GetLatestSnapshot(), InvalidSnapshot,
                                      false, false, 0);
        else
            rc = SPI_execute_plan(statement.plan, args.values, args.nulls, snapshot == SnapshotChoice::Caller, 0);
    });
    return collect(rc, processed);
}
} // namespace

std::vector<Row> Spi::run(Statement &statement, std::initializer_list<SqlArg> params, bool read_only) {
    return execute(statement, params, read_only ? SnapshotChoice::Caller : SnapshotChoice::Fresh, processed_);
}

std::vector<Row> Spi::run_latest(Statement &statement, std::initializer_list<SqlArg> params) {
    return execute(statement, params, SnapshotChoice::Latest, processed_);
}

std::vector<Row> Spi::run(DynamicStatement &statement, const std::string &sql, const Oid *types, Datum *values,
                          const char *nulls, int n) {
    int rc = 0;
    pg_guard([&] {
        if (!statement.sql || sql != statement.sql) {
            if (statement.plan)
                SPI_freeplan(statement.plan);
            if (statement.sql)
                pfree(statement.sql);
            statement.plan = nullptr;
            statement.sql = nullptr;
            SPIPlanPtr plan = SPI_prepare_cursor(sql.c_str(), n, const_cast<Oid *>(types), CURSOR_OPT_GENERIC_PLAN);
            if (!plan)
                elog(ERROR, "pgfeed: could not prepare \"%s\": %s", sql.c_str(), SPI_result_code_string(SPI_result));
            SPI_keepplan(plan);
            statement.plan = plan;
            statement.sql = MemoryContextStrdup(TopMemoryContext, sql.c_str());
        }
        rc = SPI_execute_plan(statement.plan, values, nulls, false, 0);
    });
    return collect(rc, processed_);
}

std::optional<Row> Spi::run_one(Statement &statement, std::initializer_list<SqlArg> params, bool read_only) {
    std::vector<Row> rows = run(statement, params, read_only);
    if (rows.empty())
        return std::nullopt;
    return rows.front();
}

} // namespace pgfeed
