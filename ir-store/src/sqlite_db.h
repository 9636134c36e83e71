// Thin RAII over the SQLite C API for the IR store: a connection, prepared statements, and
// SQLite result codes mapped to mmsb::Status (SQLITE_CORRUPT and SQLITE_NOTADB become
// Corruption; everything else IO, with SQLite's message).
//
// Thread-safety: as for the underlying connection: one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "mmsb/status.h"

namespace mmsb::ir::sql {

// A Status for result code `rc` of an operation on `db` ("what" says which).
Status ErrorStatus(sqlite3* db, int rc, std::string_view what);

bool IsBusy(int rc);

class Statement {
 public:
  Statement() = default;
  Statement(Statement&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept;
  ~Statement();

  static Expected<Statement> Prepare(sqlite3* db, std::string_view sql);

  Statement& Bind(int i, std::int64_t v);
  Statement& Bind(int i, std::string_view v);
  Statement& BindBlob(int i, const void* data, size_t size);
  Statement& BindNull(int i);

  // SQLITE_ROW: true; SQLITE_DONE: false; anything else: an error status (the statement is
  // reset either way on the next Reset()).
  Expected<bool> Step();
  // Steps to completion (statements without rows).
  Status Run();
  void Reset();

  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const;
  std::string_view Blob(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Runs `sql` (one or more statements, no results).
Status Exec(sqlite3* db, std::string_view sql);

}  // namespace mmsb::ir::sql
