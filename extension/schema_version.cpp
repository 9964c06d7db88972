#include "schema_version.hpp"

#include "pg_boundary.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
}

#include <string>

namespace pgfeed {

namespace {

LocalTransactionId checked_in = InvalidLocalTransactionId;

// The extversion of pgfeed in this database; empty when it is not installed. May ereport.
std::string installed_version() {
    std::string version;
    pg_guard([&] {
        Oid extension = get_extension_oid("pgfeed", true);
        if (!OidIsValid(extension))
            return;
        Relation rel = table_open(ExtensionRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(extension));
        SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
        HeapTuple tuple = systable_getnext(scan);
        bool null = true;
        Datum value = HeapTupleIsValid(tuple)
                          ? heap_getattr(tuple, Anum_pg_extension_extversion, RelationGetDescr(rel), &null)
                          : Datum(0);
        if (!null) {
            char *chars = text_to_cstring(DatumGetTextPP(value));
            version = chars;
            pfree(chars);
        }
        systable_endscan(scan);
        table_close(rel, AccessShareLock);
    });
    return version;
}

// Release versions compare as dotted numbers; "0.10.0" is newer than "0.9.0".
bool older_than_library(const std::string &version) {
    unsigned a[3] = {}, b[3] = {};
    sscanf(version.c_str(), "%u.%u.%u", &a[0], &a[1], &a[2]);
    sscanf(kLibraryVersion, "%u.%u.%u", &b[0], &b[1], &b[2]);
    return std::lexicographical_compare(a, a + 3, b, b + 3);
}

} // namespace

void require_schema_version() {
    if (creating_extension || MyProc->lxid == checked_in)
        return;
    const std::string installed = installed_version();
    if (installed == kLibraryVersion) {
        checked_in = MyProc->lxid;
        return;
    }
    if (installed.empty())
        throw FeedError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "the pgfeed extension is not installed in this database", "Run CREATE EXTENSION pgfeed;");
    const std::string what =
        "this database has pgfeed " + installed + ", but the server runs the pgfeed library " + kLibraryVersion;
    if (older_than_library(installed))
        throw FeedError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, what,
                        std::string("Run ALTER EXTENSION pgfeed UPDATE TO '") + kLibraryVersion +
                            "'; in this database.");
    throw FeedError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, what,
                    "Install the pgfeed library of version " + installed + " (make install) and restart the server.");
}

bool schema_version_matches() {
    std::string installed;
    try {
        installed = installed_version();
    } catch (const PgError &) {
        return false;
    }
    if (installed.empty() || installed == kLibraryVersion)
        return installed == kLibraryVersion;
    elog(LOG, "pgfeed: not numbering in database %u: its pgfeed is %s, the library %s", MyDatabaseId, installed.c_str(),
         kLibraryVersion);
    return false;
}

} // namespace pgfeed

// The trigger function of releases up to 0.3.0, which numbered items at commit. Its SQL object is
// still created on the way through the upgrade scripts and dropped by 0.4.0's.
PGFEED_FUNCTION(pgfeed_sequence) {
    (void)fcinfo;
    throw pgfeed::FeedError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "pgfeed._sequence belongs to pgfeed 0.3.0 and earlier",
                            std::string("Run ALTER EXTENSION pgfeed UPDATE TO '") + pgfeed::kLibraryVersion + "';");
}
