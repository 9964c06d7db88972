#include "arguments.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

namespace pgfeed {

char *restricted_user_key = nullptr;

namespace {
constexpr std::size_t kMaxIdsPerCall = 10000;
constexpr int kMaxWithinPatterns = 1000;
} // namespace

void require_not_null(FunctionCallInfo fcinfo, int n, const char *name) {
    if (PG_ARGISNULL(n))
        throw FeedError(ERRCODE_NULL_VALUE_NOT_ALLOWED, std::string(name) + " must not be NULL",
                        std::string("Pass a value for ") + name + "; the README's SQL reference lists each argument.");
}

std::string text_arg(FunctionCallInfo fcinfo, int n, const char *name) {
    require_not_null(fcinfo, n, name);
    std::string out;
    pg_guard([&] {
        text *t = PG_GETARG_TEXT_PP(n);
        out.assign(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
    });
    return out;
}

std::string user_key_arg(FunctionCallInfo fcinfo, int n) {
    std::string key = text_arg(fcinfo, n, "user_key");
    if (key.empty() || key.size() > kMaxUserKeyBytes)
        throw FeedError(ERRCODE_INVALID_PARAMETER_VALUE,
                        "user_key must be 1 to " + std::to_string(kMaxUserKeyBytes) + " bytes long",
                        "Use the app's own user id as text, e.g. '42' or a UUID.");
    if (restricted_user_key && restricted_user_key[0] && key != restricted_user_key)
        throw FeedError(ERRCODE_INSUFFICIENT_PRIVILEGE, "pgfeed.user_key restricts this session to another user",
                        "The session may only read and change the state of the user named by pgfeed.user_key.");
    return key;
}

FeedSpec feed_arg(FunctionCallInfo fcinfo, int n) {
    std::string text = text_arg(fcinfo, n, "feed");
    std::string error = feed_spec_error(text);
    if (!error.empty())
        throw FeedError(ERRCODE_INVALID_PARAMETER_VALUE, error,
                        "A feed is 'all', 'following', or one topic written column:value, e.g. 'mp_id:7'.");
    return parse_feed_spec(text);
}

std::string topic_arg(FunctionCallInfo fcinfo, int n) {
    std::string text = text_arg(fcinfo, n, "topic");
    std::string error = topic_error(text);
    if (!error.empty())
        throw FeedError(ERRCODE_INVALID_PARAMETER_VALUE, error,
                        "A topic is written column:value, e.g. 'mp_id:7', with the topic column of an attached table.");
    return text;
}

std::vector<int64_t> id_array_arg(FunctionCallInfo fcinfo, int n, const char *name) {
    require_not_null(fcinfo, n, name);
    Datum *elements = nullptr;
    bool *nulls = nullptr;
    int count = 0, ndim = 0;
    pg_guard([&] {
        ArrayType *array = PG_GETARG_ARRAYTYPE_P(n);
        ndim = ARR_NDIM(array);
        deconstruct_array(array, INT8OID, 8, true, TYPALIGN_DOUBLE, &elements, &nulls, &count);
    });
    if (ndim > 1)
        throw FeedError(ERRCODE_ARRAY_SUBSCRIPT_ERROR, std::string(name) + " must be a one-dimensional array");
    if (static_cast<std::size_t>(count) > kMaxIdsPerCall)
        throw FeedError(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                        std::string(name) + " holds more than " + std::to_string(kMaxIdsPerCall) + " ids",
                        "Split the ids over several calls, or use mark_all_read.");
    std::vector<int64_t> ids;
    for (int i = 0; i < count; ++i) {
        if (nulls[i])
            throw FeedError(ERRCODE_NULL_VALUE_NOT_ALLOWED, std::string(name) + " must not contain NULL");
        ids.push_back(DatumGetInt64(elements[i]));
    }
    return ids;
}

std::optional<int64_t> optional_position_arg(FunctionCallInfo fcinfo, int n, const char *name) {
    if (PG_ARGISNULL(n))
        return std::nullopt;
    int64_t position = PG_GETARG_INT64(n);
    if (position < 0)
        throw FeedError(ERRCODE_INVALID_PARAMETER_VALUE, std::string(name) + " must not be negative",
                        "Positions come from the position column of pgfeed.page.");
    return position;
}

void ambiguous_id(int64_t id) {
    throw FeedError(ERRCODE_AMBIGUOUS_PARAMETER,
                    "activity id " + std::to_string(id) + " exists in several attached tables",
                    "Pass source => 'the_table' to say which one.");
}

Oid optional_source_arg(FunctionCallInfo fcinfo, int n) { return PG_ARGISNULL(n) ? InvalidOid : PG_GETARG_OID(n); }

SqlArg within_arg(FunctionCallInfo fcinfo, int n) {
    if (PG_ARGISNULL(n))
        return SqlArg{TEXTARRAYOID, Datum(0), true};
    int ndim = 0, count = 0;
    bool has_null = false;
    Datum patterns = Datum(0);
    pg_guard([&] {
        ArrayType *array = PG_GETARG_ARRAYTYPE_P(n);
        ndim = ARR_NDIM(array);
        count = ArrayGetNItems(ndim, ARR_DIMS(array));
        has_null = array_contains_nulls(array);
        patterns = PointerGetDatum(array);
    });
    if (ndim > 1)
        throw FeedError(ERRCODE_ARRAY_SUBSCRIPT_ERROR, "within must be a one-dimensional array");
    if (has_null)
        throw FeedError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "within must not contain NULL",
                        "within => NULL means no bound; an empty array bounds the call to nothing.");
    if (count > kMaxWithinPatterns)
        throw FeedError(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                        "within holds more than " + std::to_string(kMaxWithinPatterns) + " patterns",
                        "Merge patterns with LIKE wildcards, e.g. 'mp_id:%'.");
    return SqlArg{TEXTARRAYOID, patterns, false};
}

void require_feed_takes_bound(const FeedSpec &feed, const SqlArg &within) {
    if (feed.kind == FeedSpec::Kind::All && !within.is_null)
        throw FeedError(ERRCODE_INVALID_PARAMETER_VALUE, "the feed 'all' takes no within bound",
                        "Pass within => NULL for 'all', or read 'following' or a topic within the patterns.");
}

} // namespace pgfeed
