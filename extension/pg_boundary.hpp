// The one boundary between C++ and PostgreSQL error handling.
//
// Entry points are declared with PGFEED_FUNCTION: their body runs inside call_guarded(), which
// catches every C++ exception and re-raises it with ereport only after all C++ frames of the call
// have unwound. Backend calls that may ereport run inside pg_guard(), which turns the longjmp into
// a PgError exception right where it happens, so no longjmp ever skips a C++ destructor.
#pragma once

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <stdexcept>
#include <string>
#include <utility>

namespace pgfeed {

// A request pgfeed refuses, with the SQLSTATE and hint the caller sees.
class FeedError : public std::runtime_error {
  public:
    FeedError(int sqlstate, const std::string &message, std::string hint = {})
        : std::runtime_error(message), sqlstate(sqlstate), hint(std::move(hint)) {}
    int sqlstate;
    std::string hint;
};

// A PostgreSQL error raised below C++ frames; re-thrown unchanged at the boundary.
class PgError {
  public:
    explicit PgError(ErrorData *data) : data(data) {}
    ErrorData *data;
};

Datum call_guarded(FunctionCallInfo fcinfo, Datum (*body)(FunctionCallInfo));

// Runs backend code that may ereport. `backend_calls` must neither throw nor own C++ resources.
template <typename F> void pg_guard(F &&backend_calls) {
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData *volatile error = nullptr;
    PG_TRY();
    { backend_calls(); }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller_context);
        error = CopyErrorData();
        FlushErrorState();
    }
    PG_END_TRY();
    if (error)
        throw PgError(error);
}

} // namespace pgfeed

#define PGFEED_FUNCTION(name)                                                                                          \
    static Datum name##_body(FunctionCallInfo fcinfo);                                                                 \
    extern "C" {                                                                                                       \
    PG_FUNCTION_INFO_V1(name);                                                                                         \
    }                                                                                                                  \
    extern "C" Datum name(PG_FUNCTION_ARGS) { return pgfeed::call_guarded(fcinfo, name##_body); }                      \
    static Datum name##_body(FunctionCallInfo fcinfo)
