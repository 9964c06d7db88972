#include "pg_boundary.hpp"

#include "core/read_bits.hpp"
#include "schema_version.hpp"

#include <new>

namespace pgfeed {

namespace {
// Copied out of the exception before it is destroyed: ereport must not run while C++ owns it.
struct PendingError {
    int sqlstate = 0;
    char message[512] = {};
    char hint[512] = {};
};

void keep(char (&to)[512], const char *from) { strlcpy(to, from, sizeof to); }
} // namespace

Datum call_guarded(FunctionCallInfo fcinfo, Datum (*body)(FunctionCallInfo)) {
    ErrorData *pg_error = nullptr;
    PendingError pending;
    try {
        require_schema_version();
        return body(fcinfo);
    } catch (const PgError &e) {
        pg_error = e.data;
    } catch (const FeedError &e) {
        pending.sqlstate = e.sqlstate;
        keep(pending.message, e.what());
        keep(pending.hint, e.hint.c_str());
    } catch (const CorruptReadState &e) {
        pending.sqlstate = ERRCODE_DATA_CORRUPTED;
        keep(pending.message, e.what());
        keep(pending.hint, "Rows of pgfeed.read_chunks were changed outside pgfeed; "
                           "delete that user's rows and mark the items again.");
    } catch (const std::bad_alloc &) {
        pending.sqlstate = ERRCODE_OUT_OF_MEMORY;
        keep(pending.message, "out of memory in pgfeed");
    } catch (const std::exception &e) {
        pending.sqlstate = ERRCODE_INTERNAL_ERROR;
        keep(pending.message, e.what());
    } catch (...) {
        pending.sqlstate = ERRCODE_INTERNAL_ERROR;
        keep(pending.message, "unknown C++ exception in pgfeed");
    }
    if (pg_error)
        ReThrowError(pg_error);
    ereport(ERROR, (errcode(pending.sqlstate), errmsg("pgfeed: %s", pending.message),
                    pending.hint[0] ? errhint("%s", pending.hint) : 0));
    pg_unreachable();
}

} // namespace pgfeed
