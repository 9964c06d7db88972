#include "privilege.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/syscache.h"
}

namespace pgfeed {

namespace {
Oid pgfeed_owner() {
    Oid owner = InvalidOid;
    pg_guard([&] {
        HeapTuple tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(get_namespace_oid("pgfeed", false)));
        if (!HeapTupleIsValid(tuple))
            elog(ERROR, "pgfeed: schema pgfeed not found");
        owner = reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tuple))->nspowner;
        ReleaseSysCache(tuple);
    });
    return owner;
}
} // namespace

AsPgfeedOwner::AsPgfeedOwner() {
    Oid owner = pgfeed_owner();
    GetUserIdAndSecContext(&caller_, &context_);
    SetUserIdAndSecContext(owner, context_ | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

// Also on the way out of an error: an aborting (sub)transaction would restore it as well.
AsPgfeedOwner::~AsPgfeedOwner() { SetUserIdAndSecContext(caller_, context_); }

bool AsPgfeedOwner::caller_may_read(Oid source) {
    auto found = readable_.find(source);
    if (found != readable_.end())
        return found->second;
    bool may = false;
    pg_guard([&] {
        bool missing = false;
        may = pg_class_aclcheck_ext(source, caller_, ACL_SELECT, &missing) == ACLCHECK_OK ||
              (!missing && pg_attribute_aclcheck_all(source, caller_, ACL_SELECT, ACLMASK_ANY) == ACLCHECK_OK);
    });
    readable_[source] = may;
    return may;
}

} // namespace pgfeed
