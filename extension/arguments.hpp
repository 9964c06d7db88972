// Validation of SQL arguments: every bad value gets a clear ERROR with SQLSTATE and hint.
#pragma once

#include "core/feed_spec.hpp"
#include "pg_boundary.hpp"
#include "spi.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pgfeed {

// The setting pgfeed.user_key: when set, functions accept no other user key.
extern char *restricted_user_key;

std::string user_key_arg(FunctionCallInfo fcinfo, int n);
std::string text_arg(FunctionCallInfo fcinfo, int n, const char *name);
FeedSpec feed_arg(FunctionCallInfo fcinfo, int n);
std::string topic_arg(FunctionCallInfo fcinfo, int n);
std::vector<int64_t> id_array_arg(FunctionCallInfo fcinfo, int n, const char *name);
std::optional<int64_t> optional_position_arg(FunctionCallInfo fcinfo, int n, const char *name);
Oid optional_source_arg(FunctionCallInfo fcinfo, int n); // InvalidOid when NULL
// within => text[]: LIKE patterns bounding the topics a call may see or change, passed on to SQL
// as is; a NULL argument (no bound) is a NULL parameter.
SqlArg within_arg(FunctionCallInfo fcinfo, int n);
// 'all' covers items of every topic and of none: a bound applies to topic feeds and 'following'.
void require_feed_takes_bound(const FeedSpec &feed, const SqlArg &within);
void require_not_null(FunctionCallInfo fcinfo, int n, const char *name);
// The id names items of several attached tables and the call did not say which.
[[noreturn]] void ambiguous_id(int64_t id);

} // namespace pgfeed
