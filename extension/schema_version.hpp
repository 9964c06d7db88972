// The library serves exactly one version of the extension's SQL objects. A database whose schema
// is at another version (a new pgfeed.so before ALTER EXTENSION pgfeed UPDATE, or the reverse)
// gets an error that says what to run, instead of failing on tables that are not there.
#pragma once

namespace pgfeed {

constexpr const char *kLibraryVersion = "0.5.0";

// Throws FeedError unless the database's pgfeed is at kLibraryVersion; checked once per
// transaction, and not while an extension script runs (it creates the objects on the way).
void require_schema_version();

// The same check for the numbering worker: false (and a log line) instead of an error.
bool schema_version_matches();

} // namespace pgfeed
