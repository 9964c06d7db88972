// SPI access for the C++ code: a connection scoped to one call, statements prepared once per
// backend, and results copied into plain values before the next statement runs.
#pragma once

#include "pg_boundary.hpp"

extern "C" {
#include "executor/spi.h"
}

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace pgfeed {

struct SqlArg {
    Oid type;
    Datum value;
    bool is_null;
};
SqlArg int4_param(int32_t v);
SqlArg int8_param(int64_t v);
SqlArg int8_or_null(std::optional<int64_t> v);
SqlArg oid_or_null(Oid v); // InvalidOid is NULL
SqlArg text_param(const std::string &v);
SqlArg bytea_param(const uint8_t *data, std::size_t size);
SqlArg int8_array_param(const std::vector<int64_t> &values);
SqlArg int4_array_param(const std::vector<int32_t> &values);
SqlArg oid_array_param(const std::vector<Oid> &values);
SqlArg text_array_param(const std::vector<std::string> &values); // "" is NULL
SqlArg timestamptz_array_param(const std::vector<int64_t> &values, const std::vector<bool> &nulls);

// One SQL statement, planned on first use and kept for the life of the backend.
struct Statement {
    const char *sql;
    SPIPlanPtr plan = nullptr;
};

// A statement whose text is built at run time and seldom changes (it names app tables and
// columns): planned once per text and kept until another text replaces it.
struct DynamicStatement {
    char *sql = nullptr; // in TopMemoryContext
    SPIPlanPtr plan = nullptr;
};

// One result row, read column by column (1-based) in the order of the statement's select list.
class Row {
  public:
    Row(HeapTuple tuple, TupleDesc desc) : tuple_(tuple), desc_(desc) {}
    bool is_null(int column) const;
    int64_t int8(int column) const;
    int32_t int4(int column) const;
    bool boolean(int column) const;
    Oid oid(int column) const;
    std::string text(int column) const;
    std::vector<uint8_t> bytea(int column) const;

  private:
    Datum get(int column) const;
    HeapTuple tuple_;
    TupleDesc desc_;
};

// An SPI connection for the duration of one entry-point call.
class Spi {
  public:
    Spi();
    ~Spi();
    Spi(const Spi &) = delete;
    Spi &operator=(const Spi &) = delete;

    // Runs `statement`; the rows stay readable while this Spi lives. `read_only` statements see the
    // caller's snapshot; the others take a fresh one under READ COMMITTED.
    std::vector<Row> run(Statement &statement, std::initializer_list<SqlArg> params, bool read_only);
    // Runs a query with the latest snapshot whatever the isolation level, as foreign-key checks
    // do: for finding rows a concurrent committed transaction wrote after this one's snapshot.
    std::vector<Row> run_latest(Statement &statement, std::initializer_list<SqlArg> params);
    // Runs `sql` through `statement` with `n` parameters of these types, planning it only when the
    // text differs from last time; a fresh snapshot under READ COMMITTED.
    std::vector<Row> run(DynamicStatement &statement, const std::string &sql, const Oid *types, Datum *values,
                         const char *nulls, int n);
    // Shorthand for statements that return at most one row.
    std::optional<Row> run_one(Statement &statement, std::initializer_list<SqlArg> params, bool read_only);
    uint64_t processed() const { return processed_; }

  private:
    uint64_t processed_ = 0;
};

} // namespace pgfeed
