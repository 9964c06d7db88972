// Whose rights pgfeed's code runs with.
//
// The SQL functions run with the caller's rights (SECURITY INVOKER), so they know who calls; their
// reads and writes of pgfeed's own tables run as pgfeed's owner, inside an AsPgfeedOwner scope, in
// a restricted operation (as PostgreSQL's maintenance commands run a table owner's code): nothing
// defined by another role is evaluated there, only pgfeed's statements over pgfeed's tables.
#pragma once

#include "pg_boundary.hpp"

#include <map>

namespace pgfeed {

class AsPgfeedOwner {
  public:
    AsPgfeedOwner();
    ~AsPgfeedOwner();
    AsPgfeedOwner(const AsPgfeedOwner &) = delete;
    AsPgfeedOwner &operator=(const AsPgfeedOwner &) = delete;

    // The role that called, whose rights decide which sources it may see.
    Oid caller() const { return caller_; }
    // Whether the caller may SELECT from the attached table (or some of its columns): items of
    // tables it cannot read are not shown to it, nor marked by it.
    bool caller_may_read(Oid source);

  private:
    Oid caller_ = InvalidOid;
    int context_ = 0;
    std::map<Oid, bool> readable_; // per call: a page asks once per source
};

} // namespace pgfeed
